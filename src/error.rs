//! Every error the extension raises, each with its SQLSTATE, message and a
//! hint that says what to do. Keeping them in one place keeps the wording and
//! the codes consistent (a bare Rust panic would surface as a vague XX000).

use std::borrow::Cow;
use std::ffi::CStr;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::search::input::{InputError, EMBEDDING_DIMENSIONS};
use crate::tenancy::passwords::MAX_PASSWORD_BYTES;
use crate::tenancy::token::TokenError;

/// Longest part of a rejected setting echoed back in a message: enough to
/// recognise it, never a wall of text in the log.
const ECHO_LIMIT: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum PlatformError {
    /// `app.current_tenant_id` holds something that is not a UUID.
    InvalidTenantSetting { value: String },
    /// A write needed the tenant context and there is none.
    NoTenantContext,
    /// A function that acts for a tenant was called without a context.
    NoTenantContextFor { function: String },
    /// `set_tenant(NULL)`.
    NullTenant,
    /// `set_tenant('00000000-0000-0000-0000-000000000000')`.
    NilTenant,
    /// An internal helper was called with NULL where it needs a value.
    NullArgument { name: &'static str },
    /// A text search configuration given by oid that does not exist.
    UnknownTextSearchConfig { oid: u32 },
    /// A search or ingestion argument that cannot be used.
    BadSearchInput(InputError),
    /// A password longer than `passwords::MAX_PASSWORD_BYTES`.
    PasswordTooLong { bytes: usize },
    /// `set_password(user, '')`.
    EmptyPassword,
    /// The operating system gave no random bytes for a salt.
    NoRandomness,
    /// A stored tsvector whose bytes do not hold together.
    MalformedTsVector,
    /// `set_tenant_token()` refused the token (never echoed).
    TenantTokenRefused(TokenError),
    /// A second, different tenant in a transaction whose tenant is set.
    TenantContextPinned,
    /// Signed mode needs a key to mint with, and `platform.tenant_keys` has none.
    NoTenantKey,
    /// `set_tenant()` in signed mode from a session that is not trusted.
    SetTenantNotTrusted,
    /// `platform_nearest_sketches` was given a relation that is not one of
    /// the extension's sketch indexes; `problem` says how.
    NotASketchIndex { problem: String },
    /// A document filter with the documents' index, or a category with the
    /// chunks'.
    SketchFilterMismatch,
    /// The caller may not SELECT from the sketch index's table.
    SketchTableNotReadable,
}

/// What the check hook of `app.current_tenant_id` reports when signed mode
/// refuses a value (never the value: it may be someone's token).
pub const CONTEXT_REFUSED_MESSAGE: &CStr =
    c"app.current_tenant_id is set only by set_tenant_token() in signed mode";
pub const CONTEXT_REFUSED_HINT: &CStr = c"Call SELECT set_tenant_token($1) in the transaction, with a token minted by the application server (docs/security.md); RESET app.current_tenant_id leaves no tenant.";

impl PlatformError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            Self::InvalidTenantSetting { .. } => {
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION
            }
            Self::NoTenantContext | Self::NoTenantContextFor { .. } => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            Self::NullTenant | Self::NullArgument { .. } => {
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED
            }
            Self::UnknownTextSearchConfig { .. } => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            Self::NilTenant => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            Self::BadSearchInput(InputError::OutOfRange { got: None, .. })
            | Self::BadSearchInput(InputError::Missing { .. })
            | Self::BadSearchInput(InputError::NullElement { .. }) => {
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED
            }
            Self::BadSearchInput(
                InputError::TooLarge { .. } | InputError::ChunksTooLarge { .. },
            ) => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            Self::BadSearchInput(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            Self::PasswordTooLong { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            Self::EmptyPassword => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            Self::NoRandomness => PgSqlErrorCode::ERRCODE_SYSTEM_ERROR,
            Self::MalformedTsVector => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            Self::TenantTokenRefused(TokenError::Malformed) => {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
            Self::TenantTokenRefused(_) | Self::TenantContextPinned | Self::SetTenantNotTrusted => {
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            Self::NoTenantKey => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            Self::NotASketchIndex { .. } => PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            Self::SketchFilterMismatch => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            Self::SketchTableNotReadable => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::InvalidTenantSetting { value } => format!(
                "app.current_tenant_id is set to \"{}\", which is not a UUID",
                echo(value)
            ),
            Self::NoTenantContext => {
                "no tenant context: app.current_tenant_id is not set in this transaction".into()
            }
            Self::NoTenantContextFor { function } => format!(
                "{}() acts for the current tenant, and this transaction has no tenant context",
                echo(function)
            ),
            Self::NullTenant => "set_tenant() needs a tenant id, got NULL".into(),
            Self::NullArgument { name } => format!("{name} must not be NULL"),
            Self::UnknownTextSearchConfig { oid } => {
                format!("text search configuration {oid} does not exist")
            }
            Self::NilTenant => {
                "set_tenant() got the nil UUID, which means \"no tenant\" and is never a tenant's id"
                    .into()
            }
            Self::BadSearchInput(input) => search_input_message(input),
            Self::PasswordTooLong { bytes } => format!(
                "a password has at most {MAX_PASSWORD_BYTES} bytes, this one has {bytes}"
            ),
            Self::EmptyPassword => "a password must not be empty".into(),
            Self::NoRandomness => "the operating system gave no random bytes for a salt".into(),
            Self::MalformedTsVector => "a search_vector value is not a well-formed tsvector".into(),
            Self::TenantTokenRefused(why) => match why {
                TokenError::Malformed => "the tenant token is malformed",
                TokenError::WrongPurpose => "the token is not a tenant token",
                TokenError::UnknownKey => {
                    "the tenant token is signed with a key id this server does not have"
                }
                TokenError::BadMac => "the tenant token's signature does not verify",
                TokenError::Expired => "the tenant token has expired",
                TokenError::TooLong => {
                    "the tenant token is valid for longer than platform.tenant_token_max_ttl allows"
                }
                TokenError::NoTransaction | TokenError::OtherTransaction => {
                    "the tenant token belongs to another transaction"
                }
            }
            .into(),
            Self::TenantContextPinned => {
                "the tenant context of this transaction is already set to another tenant".into()
            }
            Self::NoTenantKey => {
                "signed tenant context: platform.tenant_keys holds no usable key".into()
            }
            Self::SetTenantNotTrusted => {
                "set_tenant() is refused in signed mode: this session is not trusted to name a tenant"
                    .into()
            }
            Self::NotASketchIndex { problem } => problem.clone(),
            Self::SketchFilterMismatch => {
                "document_ids filter chunks and category filters documents".into()
            }
            Self::SketchTableNotReadable => {
                "permission denied for the table of the sketch index".into()
            }
        }
    }

    pub fn hint(&self) -> Cow<'static, str> {
        match self {
            Self::InvalidTenantSetting { .. } => {
                "Set the context with SELECT set_tenant('<tenant uuid>') inside the transaction, \
                 or RESET app.current_tenant_id."
                    .into()
            }
            Self::NoTenantContext => {
                "Call SELECT set_tenant('<tenant uuid>') in this transaction before writing, \
                 or give tenant_id explicitly."
                    .into()
            }
            Self::NoTenantContextFor { function } => format!(
                "Call SELECT set_tenant('<tenant uuid>') earlier in the same transaction, then {}().",
                echo(function)
            )
            .into(),
            Self::NullTenant | Self::NilTenant => {
                "Pass the id of an existing tenant; to leave no context, end the transaction.".into()
            }
            Self::NullArgument { .. } => "Pass a value.".into(),
            Self::UnknownTextSearchConfig { .. } => {
                "Use one of SELECT cfgname FROM pg_ts_config, for example 'english' or 'simple'."
                    .into()
            }
            Self::BadSearchInput(input) => search_input_hint(input),
            Self::PasswordTooLong { .. } => {
                "Ask for a shorter password; a passphrase of a few words is long enough.".into()
            }
            Self::EmptyPassword => {
                "Pass the new password; to remove a user's password, UPDATE users SET password_hash = NULL."
                    .into()
            }
            Self::NoRandomness => {
                "Check the server's random source (/dev/urandom, or OpenSSL's) and try again.".into()
            }
            Self::MalformedTsVector => {
                "Recompute the rows' search_vector (UPDATE ... SET content = content) and check \
                 the storage they were read from."
                    .into()
            }
            Self::TenantTokenRefused(why) => match why {
                TokenError::Malformed | TokenError::WrongPurpose => {
                    "Pass the token as the application minted it: \
                     v1.<kid>.tenant.<tenant uuid>.<expires>.<hex HMAC-SHA-256> (docs/security.md)."
                }
                TokenError::UnknownKey => {
                    "Sign with a key listed in platform.tenant_keys; after adding one, the server \
                     needs SELECT pg_reload_conf()."
                }
                TokenError::BadMac => {
                    "Sign the token body platform-v1.<kid>.tenant.<tenant uuid>.<expires> with the \
                     key of that kid (docs/security.md)."
                }
                TokenError::Expired | TokenError::TooLong => {
                    "Mint a token per request, valid for about a minute, and check the clocks of \
                     the application server and the database."
                }
                TokenError::NoTransaction | TokenError::OtherTransaction => {
                    "Mint a new token for this transaction."
                }
            }
            .into(),
            Self::TenantContextPinned => "End the transaction (COMMIT or ROLLBACK) and set the \
                 next tenant in a new one."
                .into(),
            Self::NoTenantKey => "Add a key (SELECT platform_new_tenant_key()) to a file that \
                 postgresql.conf includes, then SELECT pg_reload_conf() (docs/security.md)."
                .into(),
            Self::SetTenantNotTrusted => "Call SELECT set_tenant_token($1) with a token minted \
                 by the application server (docs/security.md); a job that runs no tenant input \
                 can be trusted with grant_trusted_context(role)."
                .into(),
            Self::NotASketchIndex { .. } => "Pass knowledge_chunk_document_idx or \
                 knowledge_category_idx, as the extension's search functions do."
                .into(),
            Self::SketchFilterMismatch => "Pass document_ids with knowledge_chunk_document_idx, \
                 category with knowledge_category_idx."
                .into(),
            Self::SketchTableNotReadable => "Grant the role access with grant_app_access().".into(),
        }
    }

    /// Raises this error in the current backend; never returns.
    pub fn raise(self, function: &'static str) -> ! {
        ErrorReport::new(self.sqlstate(), self.message(), function)
            .set_hint(self.hint().into_owned())
            .report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    }
}

fn search_input_hint(input: &InputError) -> Cow<'static, str> {
    match input {
        InputError::WrongDimension { .. } => {
            "Embed the query with the same model as the documents (1024 dimensions).".into()
        }
        InputError::NonFinite { .. } | InputError::ZeroVector => {
            "Pass the embedding model's output unchanged; for a search without a vector, pass NULL."
                .into()
        }
        InputError::OutOfRange { .. } => "Pass a value inside the range.".into(),
        InputError::NotPositive { .. } => {
            "Weights are finite numbers >= 0; 0 switches a branch off.".into()
        }
        InputError::UnknownChoice { .. } => "Pass one of the values listed.".into(),
        InputError::Missing { .. } => {
            "Pass a value, or leave the argument out for its default.".into()
        }
        InputError::TooLarge { setting, .. } => {
            format!("Send less at once, or have an operator raise {setting}.").into()
        }
        InputError::ChunksTooLarge { .. } => "Use a smaller overlap or a larger chunk_size, or \
             have an operator raise platform.max_text_length."
            .into(),
        InputError::NullElement { .. } => "Leave NULLs out of the array.".into(),
        InputError::Unpaired { .. } => "Pass one score per id, in the same order.".into(),
    }
}

fn search_input_message(input: &InputError) -> String {
    match input {
        InputError::WrongDimension { got } => format!(
            "the embedding has {got} dimensions, the stored embeddings {EMBEDDING_DIMENSIONS}"
        ),
        InputError::NonFinite { index, value } => {
            // As PostgreSQL spells them.
            let value = if value.is_nan() {
                "NaN"
            } else if *value > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            format!(
                "the embedding's component {} is {value}, not a finite number",
                index + 1
            )
        }
        InputError::ZeroVector => {
            "the embedding is the zero vector, which has no cosine distance to anything".into()
        }
        InputError::OutOfRange {
            name,
            got: Some(got),
            min,
            max,
        } => {
            format!("{name} must be between {min} and {max}, got {got}")
        }
        InputError::OutOfRange {
            name,
            got: None,
            min,
            max,
        } => {
            format!("{name} must be between {min} and {max}, got NULL")
        }
        InputError::NotPositive { name, got } => {
            format!("{name} must be a finite number >= 0, got {got}")
        }
        InputError::Missing { name } => format!("{name} must not be NULL"),
        InputError::TooLarge {
            what,
            unit,
            got,
            limit,
            setting,
        } => format!("{what} has {got} {unit}, more than {setting} allows ({limit})"),
        InputError::NullElement { name, index } => {
            format!("{name} holds NULL at position {}", index + 1)
        }
        InputError::Unpaired {
            first,
            second,
            first_len,
            second_len,
        } => format!("{first} has {first_len} entries and {second} {second_len}"),
        InputError::ChunksTooLarge { limit } => format!(
            "the chunks would take more than {limit} characters in all (twice platform.max_text_length)"
        ),
        InputError::UnknownChoice { name, got, allowed } => format!(
            "{name} must be one of {}, got \"{}\"",
            allowed.join(", "),
            echo(got)
        ),
    }
}

/// The first `ECHO_LIMIT` characters of `value`, cut at a character boundary.
fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_keeps_short_values_whole() {
        assert_eq!(echo("not-a-uuid"), "not-a-uuid");
    }

    #[test]
    fn echo_cuts_long_values_on_a_character_boundary() {
        let long = "é".repeat(ECHO_LIMIT + 10);
        let cut = echo(&long);
        assert_eq!(cut.chars().count(), ECHO_LIMIT + 3);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn invalid_setting_message_names_the_value() {
        let err = PlatformError::InvalidTenantSetting {
            value: "x'; DROP".into(),
        };
        assert!(err.message().contains("\"x'; DROP\""));
        assert_eq!(
            err.sqlstate(),
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION
        );
    }

    #[test]
    fn a_function_without_a_tenant_context_is_named_in_message_and_hint() {
        let err = PlatformError::NoTenantContextFor {
            function: "record_cost_event".into(),
        };
        assert_eq!(
            err.sqlstate(),
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE
        );
        assert!(err
            .message()
            .starts_with("record_cost_event() acts for the current tenant"));
        assert!(
            err.hint().contains("set_tenant") && err.hint().contains("then record_cost_event().")
        );
    }
}
