//! API integration tests: the real router, driven in-process, on a demo estate in a temporary
//! data folder. One binary; each module covers one part of the API.

mod admin_ext;
mod common;
mod directory;
mod discovery;
mod faults;
mod fidelity;
mod hostile;
mod job_admin;
mod jobs;
mod portal;
mod query;
mod reliability;
mod reply_cache;
mod reports;
mod restore;
mod restore_errors;
mod security;
mod seed;
mod session;
mod session_cache;
mod slapd;
mod streaming;
mod tasks;
