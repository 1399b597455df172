//! Community ID v1 flow hashing.
