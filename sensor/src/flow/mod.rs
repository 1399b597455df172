//! Bidirectional flow tracking.

pub mod community_id;
