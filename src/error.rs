//! Every error the extension raises, each with its SQLSTATE, message and a
//! hint that says what to do. Keeping them in one place keeps the wording and
//! the codes consistent (a bare Rust panic would surface as a vague XX000).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Longest part of a rejected setting echoed back in a message: enough to
/// recognise it, never a wall of text in the log.
const ECHO_LIMIT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformError {
    /// `app.current_tenant_id` holds something that is not a UUID.
    InvalidTenantSetting { value: String },
    /// A write needed the tenant context and there is none.
    NoTenantContext,
    /// `set_tenant(NULL)`.
    NullTenant,
    /// `set_tenant('00000000-0000-0000-0000-000000000000')`.
    NilTenant,
}

impl PlatformError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            Self::InvalidTenantSetting { .. } => {
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION
            }
            Self::NoTenantContext => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            Self::NullTenant => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            Self::NilTenant => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
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
            Self::NullTenant => "set_tenant() needs a tenant id, got NULL".into(),
            Self::NilTenant => {
                "set_tenant() got the nil UUID, which means \"no tenant\" and is never a tenant's id"
                    .into()
            }
        }
    }

    pub fn hint(&self) -> &'static str {
        match self {
            Self::InvalidTenantSetting { .. } => {
                "Set the context with SELECT set_tenant('<tenant uuid>') inside the transaction, \
                 or RESET app.current_tenant_id."
            }
            Self::NoTenantContext => {
                "Call SELECT set_tenant('<tenant uuid>') in this transaction before writing, \
                 or give tenant_id explicitly."
            }
            Self::NullTenant | Self::NilTenant => {
                "Pass the id of an existing tenant; to leave no context, end the transaction."
            }
        }
    }

    /// Raises this error in the current backend; never returns.
    pub fn raise(self, function: &'static str) -> ! {
        ErrorReport::new(self.sqlstate(), self.message(), function)
            .set_hint(self.hint())
            .report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
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
}
