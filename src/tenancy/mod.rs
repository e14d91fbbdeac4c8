//! Tenancy: which tenant a transaction acts for, and the secrets that lead to
//! a tenant before one is known.

pub mod context;
pub mod secrets;
pub mod setting;
