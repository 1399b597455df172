//! TLS ClientHello SNI extraction.
