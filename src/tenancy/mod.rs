//! Tenancy: which tenant a transaction acts for, the secrets that lead to a
//! tenant before one is known, and users' passwords.

pub mod context;
pub mod credentials;
pub mod passwords;
pub mod secrets;
pub mod setting;
pub mod token;
