//! Tenant isolation of all 14 tenant-scoped tables, as the application role
//! (LOGIN NOSUPERUSER NOBYPASSRLS, prepared by grant_app_access()).
//!
//! Two tenants, A and B, each get one row in every table (see fixture.rs);
//! every test then checks one property for every table, naming the table in
//! its failure message.

use std::sync::OnceLock;

use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::Transaction;
use uuid::Uuid;

/// A tenant-scoped table, what names its tenant, the foreign keys that point
/// at another tenant-scoped row, and the globally unique text columns a copy
/// of a row must change to be insertable.
struct Table {
    name: &'static str,
    tenant_column: &'static str,
    references: &'static [(&'static str, &'static str)],
    unique_text: &'static [&'static str],
}

const TABLES: [Table; 14] = [
    Table {
        name: "tenants",
        tenant_column: "id",
        references: &[],
        unique_text: &["api_key"],
    },
    Table {
        name: "users",
        tenant_column: "tenant_id",
        references: &[],
        unique_text: &["email"],
    },
    Table {
        name: "accounts",
        tenant_column: "tenant_id",
        references: &[("user_id", "users")],
        unique_text: &["provider_account_id"],
    },
    Table {
        name: "auth_sessions",
        tenant_column: "tenant_id",
        references: &[("user_id", "users")],
        unique_text: &["session_token"],
    },
    Table {
        name: "widgets",
        tenant_column: "tenant_id",
        references: &[],
        unique_text: &[],
    },
    Table {
        name: "meetings",
        tenant_column: "tenant_id",
        references: &[("created_by", "users")],
        unique_text: &["room_name", "livekit_room_id"],
    },
    Table {
        name: "sessions",
        tenant_column: "tenant_id",
        references: &[("widget_id", "widgets"), ("meeting_id", "meetings")],
        unique_text: &[],
    },
    Table {
        name: "messages",
        tenant_column: "tenant_id",
        references: &[("session_id", "sessions")],
        unique_text: &[],
    },
    Table {
        name: "knowledge_documents",
        tenant_column: "tenant_id",
        references: &[],
        unique_text: &[],
    },
    Table {
        name: "knowledge_chunks",
        tenant_column: "tenant_id",
        references: &[("document_id", "knowledge_documents")],
        unique_text: &[],
    },
    Table {
        name: "cost_events",
        tenant_column: "tenant_id",
        references: &[("session_id", "sessions")],
        unique_text: &[],
    },
    Table {
        name: "cost_summaries",
        tenant_column: "tenant_id",
        references: &[],
        unique_text: &[],
    },
    Table {
        name: "budget_alerts",
        tenant_column: "tenant_id",
        references: &[],
        unique_text: &[],
    },
    Table {
        name: "ai_personalities",
        tenant_column: "tenant_id",
        references: &[],
        unique_text: &[],
    },
];

/// Tenants A and B with a row in every table, shared by the tests (which
/// only ever fail to change them).
fn tenants() -> &'static (TenantData, TenantData) {
    static TENANTS: OnceLock<(TenantData, TenantData)> = OnceLock::new();
    TENANTS.get_or_init(|| {
        let mut app = app();
        (
            populate_tenant(&mut app, "Tenant A"),
            populate_tenant(&mut app, "Tenant B"),
        )
    })
}

/// A copy of one of `table`'s rows as JSON, read as the superuser, with a new
/// id, fresh values in its unique text columns, and `overrides` applied.
fn row_copy(table: &Table, row: Uuid, overrides: &[(&str, Uuid)]) -> String {
    let mut patch = vec![format!("\"id\": \"{}\"", Uuid::new_v4())];
    patch.extend(
        table
            .unique_text
            .iter()
            .map(|c| format!("\"{c}\": \"{}\"", Uuid::new_v4())),
    );
    patch.extend(overrides.iter().map(|(c, v)| format!("\"{c}\": \"{v}\"")));
    let sql = format!(
        "SELECT (to_jsonb(t) || $2::text::jsonb)::text FROM {} t WHERE id = $1",
        table.name
    );
    admin()
        .query_one(&sql, &[&row, &format!("{{{}}}", patch.join(", "))])
        .unwrap_or_else(|e| panic!("{}: read row: {e}", table.name))
        .get(0)
}

/// INSERTs a row given as JSON into `table`, leaving out `omit` (so that its
/// default applies) and generated columns (which cannot be written).
fn insert_json(
    tx: &mut Transaction,
    table: &Table,
    json: &str,
    omit: Option<&str>,
) -> Result<u64, postgres::Error> {
    let columns: String = tx
        .query_one(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped
               AND attgenerated = '' AND attname IS DISTINCT FROM $2",
            &[&table.name, &omit],
        )?
        .get(0);
    let sql = format!(
        "INSERT INTO {0} ({1}) SELECT {1} FROM jsonb_populate_record(NULL::{0}, $1::text::jsonb)",
        table.name, columns
    );
    tx.execute(&sql, &[&json])
}

fn count_where(tx: &mut Transaction, table: &Table, condition: &str, param: Uuid) -> i64 {
    let sql = format!("SELECT count(*) FROM {} WHERE {condition}", table.name);
    tx.query_one(&sql, &[&param])
        .unwrap_or_else(|e| panic!("{}: {e}", table.name))
        .get(0)
}

#[test]
fn document_shaped_inserts_fill_the_tenant_from_the_context() {
    let (a, _) = tenants();
    let mut admin = admin();
    for table in &TABLES {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = $1",
            table.tenant_column, table.name
        );
        let tenant: Uuid = admin
            .query_one(&sql, &[&a.row(table.name)])
            .unwrap_or_else(|e| panic!("{}: {e}", table.name))
            .get(0);
        assert_eq!(
            tenant, a.tenant,
            "{}: the row belongs to the tenant of the context",
            table.name
        );
    }
}

#[test]
fn without_a_context_nothing_is_read_or_written() {
    let (a, _) = tenants();
    let mut app = app();
    let mut tx = app.transaction().unwrap();
    for table in &TABLES {
        let seen: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .unwrap()
            .get(0);
        assert_eq!(seen, 0, "{}: rows visible without a context", table.name);
        let update = format!("UPDATE {0} SET {1} = {1}", table.name, table.tenant_column);
        assert_eq!(
            tx.execute(&update, &[]).unwrap(),
            0,
            "{}: rows updated without a context",
            table.name
        );
        assert_eq!(
            tx.execute(&format!("DELETE FROM {}", table.name), &[])
                .unwrap(),
            0,
            "{}: rows deleted without a context",
            table.name
        );
        let copy = row_copy(table, a.row(table.name), &[]);
        assert_sqlstate(
            attempt(&mut tx, |tx| insert_json(tx, table, &copy, None)),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &format!("{}: insert naming a tenant without a context", table.name),
        );
        assert_sqlstate(
            attempt(&mut tx, |tx| {
                insert_json(tx, table, &copy, Some(table.tenant_column))
            }),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &format!(
                "{}: insert leaving the tenant to the (missing) context",
                table.name
            ),
        );
    }
}

#[test]
fn a_tenant_sees_its_own_rows_only() {
    let (a, b) = tenants();
    let mut app = app();
    as_tenant(&mut app, a.tenant, |tx| {
        for table in &TABLES {
            let own = count_where(tx, table, "id = $1", a.row(table.name));
            assert_eq!(own, 1, "{}: own row not visible", table.name);
            let others = count_where(
                tx,
                table,
                &format!("{} <> $1", table.tenant_column),
                a.tenant,
            );
            assert_eq!(others, 0, "{}: rows of other tenants visible", table.name);
            let theirs = count_where(tx, table, "id = $1", b.row(table.name));
            assert_eq!(theirs, 0, "{}: tenant B's row visible to A", table.name);
        }
    });
}

#[test]
fn another_tenants_rows_cannot_be_updated_or_deleted() {
    let (a, b) = tenants();
    let mut app = app();
    as_tenant(&mut app, a.tenant, |tx| {
        for table in &TABLES {
            let update = format!(
                "UPDATE {0} SET {1} = {1} WHERE id = $1",
                table.name, table.tenant_column
            );
            assert_eq!(
                tx.execute(&update, &[&b.row(table.name)]).unwrap(),
                0,
                "{}: updated B's row",
                table.name
            );
            let delete = format!("DELETE FROM {} WHERE id = $1", table.name);
            assert_eq!(
                tx.execute(&delete, &[&b.row(table.name)]).unwrap(),
                0,
                "{}: deleted B's row",
                table.name
            );
        }
    });
    let mut admin = admin();
    for table in &TABLES {
        let still: i64 = admin
            .query_one(
                &format!("SELECT count(*) FROM {} WHERE id = $1", table.name),
                &[&b.row(table.name)],
            )
            .unwrap()
            .get(0);
        assert_eq!(still, 1, "{}: B's row is gone", table.name);
    }
}

#[test]
fn rows_cannot_be_moved_or_written_into_another_tenant() {
    let (a, b) = tenants();
    let mut app = app();
    as_tenant(&mut app, a.tenant, |tx| {
        for table in &TABLES {
            let moved = format!(
                "UPDATE {} SET {} = $1 WHERE id = $2",
                table.name, table.tenant_column
            );
            assert_sqlstate(
                attempt(tx, |tx| {
                    tx.execute(&moved, &[&b.tenant, &a.row(table.name)])
                }),
                SqlState::INSUFFICIENT_PRIVILEGE,
                &format!("{}: moving A's row to B", table.name),
            );
            let copy = row_copy(table, a.row(table.name), &[(table.tenant_column, b.tenant)]);
            assert_sqlstate(
                attempt(tx, |tx| insert_json(tx, table, &copy, None)),
                SqlState::INSUFFICIENT_PRIVILEGE,
                &format!("{}: inserting a row for B under A's context", table.name),
            );
            // Control: the same copy for A's own tenant goes in.
            let own = row_copy(table, a.row(table.name), &[]);
            if table.name != "tenants" {
                assert_eq!(
                    attempt(tx, |tx| insert_json(tx, table, &own, None)).unwrap(),
                    1,
                    "{}",
                    table.name
                );
            }
        }
    });
}

#[test]
fn foreign_keys_cannot_reach_another_tenants_rows() {
    let (a, b) = tenants();
    let mut app = app();
    let mut checked = 0;
    as_tenant(&mut app, a.tenant, |tx| {
        for table in &TABLES {
            for &(column, parent) in table.references {
                let copy = row_copy(table, a.row(table.name), &[(column, b.row(parent))]);
                assert_sqlstate(
                    attempt(tx, |tx| insert_json(tx, table, &copy, None)),
                    SqlState::FOREIGN_KEY_VIOLATION,
                    &format!(
                        "{}.{column}: inserting a reference to B's {parent}",
                        table.name
                    ),
                );
                let repoint = format!("UPDATE {} SET {column} = $1 WHERE id = $2", table.name);
                assert_sqlstate(
                    attempt(tx, |tx| {
                        tx.execute(&repoint, &[&b.row(parent), &a.row(table.name)])
                    }),
                    SqlState::FOREIGN_KEY_VIOLATION,
                    &format!("{}.{column}: re-pointing to B's {parent}", table.name),
                );
                checked += 1;
            }
        }
    });
    assert_eq!(checked, 8, "every tenant-scoped foreign key was tried");
}
