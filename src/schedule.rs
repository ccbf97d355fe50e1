//! What plays now and next, given a manifest and an instant.
