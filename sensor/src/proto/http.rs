//! HTTP request Host extraction.
