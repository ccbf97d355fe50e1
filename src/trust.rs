//! Player-side acceptance of verified manifests and the persisted trust state.
