//! The repository against storage and targets that are not files: everything a backup and a
//! restore do goes through the `Storage` and `RestoreTarget` traits, so a repository in
//! memory and an in-memory disk behave as a folder and a file do (the S3 crate runs the same
//! test against a real bucket).

use std::sync::Arc;

use emrest_repo::MemoryStorage;

#[test]
fn a_repository_in_memory_backs_up_restores_verifies_and_collects_garbage_without_a_folder() {
    emrest_repo::testing::backs_up_restores_verifies_and_collects_garbage(Arc::new(
        MemoryStorage::new(),
    ));
}
