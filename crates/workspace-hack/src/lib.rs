//! Feature unification for the Switchyard workspace: no code, only the dependency features listed in its
//! `Cargo.toml`, so `cargo run` and `cargo test` build each dependency once.
