//! Every `platform.*` setting, registered when the library loads so that each
//! is listed in `pg_settings` with its description, bounds and who may change
//! it, and a value out of bounds is refused at `SET` time. The prefix is
//! reserved: once the library is loaded (any platform function loads it, and
//! every policy calls one), `SET platform.<misspelt name>` is an error instead
//! of a silently ignored placeholder.
//!
//! Every one bounds work or what is accepted, so only superusers may change it
//! (PGC_SUSET): an application role, which may run SQL a tenant injected,
//! cannot loosen them. An operator can delegate one with
//! `GRANT SET ON PARAMETER platform.<name> TO <role>`.
//!
//! SQL reads each setting through a function of its own (STABLE, so read once
//! per statement), which also loads the library in a fresh backend.

use std::ffi::{CStr, CString};

use pgrx::datum::Interval;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::search::bm25;
use crate::tenancy::{context, passwords};

const PREFIX: &CStr = c"platform";
const MINUTES_PER_DAY: i32 = 24 * 60;

/// Below this many chunks (or documents) in a search's scope the scope is
/// scanned (by embedding sketch) instead of walked through HNSW. -1, the
/// default: a threshold that follows the table's size
/// (`platform_exact_scan_threshold`, docs/search.md).
static EXACT_SCAN_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(-1);
/// How many of a scanned scope's chunks, the nearest by their embedding
/// sketches, vector search compares whole; 0 compares every chunk of the
/// scope. Chosen on the real-text benchmark (docs/search.md).
static SKETCH_CANDIDATES: GucSetting<i32> = GucSetting::<i32>::new(200);
/// A word in more than this share of the tenant's rows is not distinctive
/// (the 'any' keyword mode leaves it out). 1 keeps every word: BM25 already
/// weighs a common word down, and the ranked rows are bounded anyway
/// (platform.keyword_rank_limit), rarest word first.
static COMMON_WORD_SHARE: GucSetting<f64> = GucSetting::<f64>::new(1.0);
/// At most this many matches are ranked by one 'any' keyword query; 0 ranks
/// every match: chosen by bench/search.sh.
static KEYWORD_RANK_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(300);
/// BM25's constants for keyword ranking (Lucene's defaults): how fast a
/// word's repetitions saturate, and how much a long row is discounted.
static BM25_K1: GucSetting<f64> = GucSetting::<f64>::new(1.2);
static BM25_B: GucSetting<f64> = GucSetting::<f64>::new(0.75);
/// Hybrid search puts the rows holding every query word first when each of
/// the words is in at most this share of the tenant's rows: a query of rare
/// words (an error code, a product name) names what it wants.
static EXACT_MATCH_WORD_SHARE: GucSetting<f64> = GucSetting::<f64>::new(0.05);
/// Most characters a text may have where a function works through it
/// (chunk_text's input and output, ingest_document's content, a search's
/// query text): bounds memory and time per call.
static MAX_TEXT_LENGTH: GucSetting<i32> = GucSetting::<i32>::new(1_000_000);
/// Most distinct words a keyword query may have: each costs an index probe.
static MAX_QUERY_TERMS: GucSetting<i32> = GucSetting::<i32>::new(64);
/// Most chunks ingest_document stores for one document.
static MAX_CHUNKS_PER_DOCUMENT: GucSetting<i32> = GucSetting::<i32>::new(10_000);
/// Argon2id cost of new password hashes: the OWASP baseline (19 MiB, 2
/// passes, one lane).
static PASSWORD_MEMORY_KIB: GucSetting<i32> = GucSetting::<i32>::new(19_456);
static PASSWORD_ITERATIONS: GucSetting<i32> = GucSetting::<i32>::new(2);
/// In minutes (so `'35d'`, `'36h'` and `'90min'` all work); 0 turns the window off.
static LATE_EVENT_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(35 * MINUTES_PER_DAY);
/// In seconds: how long a spend reservation holds its amount against a hard
/// cap before it stops counting (an AI call that never came back).
static RESERVATION_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(15 * 60);
const SECONDS_PER_WEEK: i32 = 7 * 24 * 60 * 60;

/// How the tenant context is trusted (docs/security.md#the-tenant-context):
/// `setting`, the 0.2.0 behaviour, trusts whatever `app.current_tenant_id`
/// holds; `signed` accepts there only what the extension minted for this
/// transaction from a token signed with `platform.tenant_keys`.
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum TenantContextMode {
    #[name = c"setting"]
    Setting,
    #[name = c"signed"]
    Signed,
}

static TENANT_CONTEXT: GucSetting<TenantContextMode> =
    GucSetting::<TenantContextMode>::new(TenantContextMode::Setting);
/// `kid:hex64[,kid:hex64...]`: read only by the extension, shown to
/// superusers only, never echoed (no check hook: PostgreSQL's own "invalid
/// value" error would print it; a malformed entry is left out).
static TENANT_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// In seconds: the longest an app token may still be valid when presented.
static TENANT_TOKEN_MAX_TTL: GucSetting<i32> = GucSetting::<i32>::new(300);
/// `app.current_tenant_id`, the tenant context itself: defined by the
/// library (with the check hook of context.rs) so that signed mode can refuse
/// what was not minted for this transaction. Its prefix is not reserved.
pub static CURRENT_TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Called once per backend, from `_PG_init`.
pub fn register() {
    GucRegistry::define_int_guc(
        c"platform.exact_scan_limit",
        c"Searches scan a scope of fewer rows than this instead of walking HNSW.",
        c"vector_search and search_documents learn the rows in scope (the tenant's count, or a \
          narrower scope's up to this limit); below it they rank the scope's own rows by \
          embedding sketch and compare the best whole (platform.sketch_candidates), at or above \
          it they use the HNSW index with an iterative scan. -1 chooses the limit from the \
          table's size, where the two cost the same; 0 always uses HNSW.",
        &EXACT_SCAN_LIMIT,
        -1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"platform.sketch_candidates",
        c"How many chunks, the nearest by their embedding sketches, a scan of a scope compares whole.",
        c"Below platform.exact_scan_limit, vector_search ranks the scope's chunks by the bits of \
          their embeddings' signs (read from an index) and compares the full vectors of this many \
          of them, never fewer than it returns. 0 compares every chunk of the scope (exact).",
        &SKETCH_CANDIDATES,
        0,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"platform.common_word_share",
        c"Share of rows above which a query word counts as common in the 'any' keyword mode.",
        c"Counted in the current tenant's own rows (never other tenants'); common words are left \
          out of an 'any' query unless every word is common, and so are words in none of them. \
          1 keeps every word that is in some row.",
        &COMMON_WORD_SHARE,
        0.0,
        1.0,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"platform.keyword_rank_limit",
        c"Most matches one 'any' keyword query ranks (0 ranks every match).",
        c"Rows holding every distinctive word come first, then rows by their rarest word, so a \
          rare word's rows are always among those ranked.",
        &KEYWORD_RANK_LIMIT,
        0,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"platform.bm25_k1",
        c"BM25's k1 in keyword ranking: how fast a word's repetitions in one row stop adding.",
        c"0 counts a word once however often it occurs; larger values let repetitions count longer.",
        &BM25_K1,
        0.0,
        10.0,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"platform.bm25_b",
        c"BM25's b in keyword ranking: how much a row longer than the tenant's average is discounted.",
        c"0 ignores row length; 1 scores a row in proportion to its length relative to the average.",
        &BM25_B,
        0.0,
        1.0,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"platform.exact_match_word_share",
        c"Hybrid search ranks rows holding every query word first when no word is in more than this share of the tenant's rows.",
        c"Those rows come first among themselves in fused order, then the others. 0 turns the rule \
          off; 1 applies it to every query.",
        &EXACT_MATCH_WORD_SHARE,
        0.0,
        1.0,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"platform.max_text_length",
        c"Most characters a text may have where a platform function works through it.",
        c"chunk_text's input (and twice it for all its chunks together), ingest_document's \
          content and chunks, and a search's query text. Longer is refused with SQLSTATE 54000.",
        &MAX_TEXT_LENGTH,
        1_000,
        100_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"platform.max_query_terms",
        c"Most distinct words a keyword query may have.",
        c"Each word of a query costs an index probe; a query with more is refused with SQLSTATE \
          54000.",
        &MAX_QUERY_TERMS,
        1,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"platform.max_chunks_per_document",
        c"Most chunks ingest_document stores for one document.",
        c"More is refused with SQLSTATE 54000.",
        &MAX_CHUNKS_PER_DOCUMENT,
        1,
        10_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"platform.cost_late_event_window",
        c"How old a cost event may be when it is inserted (0 = no limit).",
        c"INSERTs into cost_events older than now() minus this window are refused, so closed \
          months stay as reported. Sessions with row_security = off (restores, backfills) are exempt.",
        &LATE_EVENT_WINDOW,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"platform.cost_reservation_timeout",
        c"How long a spend reservation counts against a hard cap unless settled or released.",
        c"reserve_spend() holds its estimate for this long; after it the reservation stops \
          counting and can no longer be settled (record the cost with record_cost_event).",
        &RESERVATION_TIMEOUT,
        1,
        SECONDS_PER_WEEK,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"platform.password_memory_kib",
        c"Memory, in KiB, of each Argon2id password hash and check.",
        c"New hashes (set_password, and the rehash at login) use it; a stored hash below it is \
          replaced at its user's next login. Each check allocates this much outside work_mem.",
        &PASSWORD_MEMORY_KIB,
        passwords::MIN_MEMORY_KIB as i32,
        passwords::MAX_MEMORY_KIB as i32,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"platform.password_iterations",
        c"Passes over memory of each Argon2id password hash.",
        c"Like platform.password_memory_kib: new hashes use it, older ones are replaced at login.",
        &PASSWORD_ITERATIONS,
        1,
        passwords::MAX_ITERATIONS as i32,
        GucContext::Suset,
        GucFlags::default(),
    );
    // The tenant context: the mode first, so that the check hook of
    // app.current_tenant_id knows it when a value set before the library
    // loaded is applied again.
    GucRegistry::define_enum_guc(
        c"platform.tenant_context",
        c"How the tenant context is trusted: 'setting' or 'signed'.",
        c"'setting' trusts what app.current_tenant_id holds (any role may SET it). 'signed' \
          accepts there only what set_tenant_token() minted for the current transaction from a \
          token signed with a key of platform.tenant_keys, so SQL run as the application role \
          cannot name another tenant.",
        &TENANT_CONTEXT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"platform.tenant_keys",
        c"The keys that sign tenant tokens: kid:hex[,kid:hex...], the first signs.",
        c"Each key at least 32 bytes (64 hex digits). Set it in a file postgresql.conf includes, \
          readable by the server only; never with ALTER SYSTEM or ALTER DATABASE/ROLE SET.",
        &TENANT_KEYS,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_int_guc(
        c"platform.tenant_token_max_ttl",
        c"Longest an application's tenant token may still be valid when presented.",
        c"set_tenant_token() refuses a token that expires further ahead (60 s is plenty for a \
          token minted per request).",
        &TENANT_TOKEN_MAX_TTL,
        1,
        SECONDS_PER_WEEK,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    // SAFETY: the hook is a #[pg_guard] function that never raises, and the
    // name and descriptions are static.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"app.current_tenant_id",
            c"The tenant the current transaction acts for (row-level security).",
            c"Set it with set_tenant_token() (or set_tenant()); in signed mode nothing else is \
              accepted here.",
            &CURRENT_TENANT,
            GucContext::Userset,
            // Not NOT_WHILE_SEC_REST: create_tenant(), a SECURITY DEFINER
            // function, sets it.
            GucFlags::default(),
            Some(context::check_current_tenant),
            None,
            None,
        );
    }
    // SAFETY: called from _PG_init after the settings above are defined, with
    // a static NUL-terminated name that PostgreSQL copies.
    unsafe { pg_sys::MarkGUCPrefixReserved(PREFIX.as_ptr()) };
}

/// `platform.exact_scan_limit`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_exact_scan_limit() -> i32 {
    EXACT_SCAN_LIMIT.get()
}

/// `platform.sketch_candidates`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_sketch_candidates() -> i32 {
    SKETCH_CANDIDATES.get()
}

/// `platform.common_word_share`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_common_word_share() -> f32 {
    COMMON_WORD_SHARE.get() as f32
}

/// `platform.keyword_rank_limit`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_keyword_rank_limit() -> i32 {
    KEYWORD_RANK_LIMIT.get()
}

/// `platform.bm25_k1` and `platform.bm25_b`.
pub fn bm25() -> bm25::Parameters {
    bm25::Parameters {
        k1: BM25_K1.get(),
        b: BM25_B.get(),
    }
}

/// `platform.exact_match_word_share`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_exact_match_word_share() -> f32 {
    EXACT_MATCH_WORD_SHARE.get() as f32
}

/// `platform.max_text_length`, in characters.
pub fn max_text_length() -> usize {
    MAX_TEXT_LENGTH.get().max(0) as usize
}

/// `platform.max_query_terms`.
pub fn max_query_terms() -> usize {
    MAX_QUERY_TERMS.get().max(0) as usize
}

/// `platform.max_query_terms`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_max_query_terms() -> i32 {
    MAX_QUERY_TERMS.get()
}

/// `platform.max_chunks_per_document`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_max_chunks_per_document() -> i32 {
    MAX_CHUNKS_PER_DOCUMENT.get()
}

/// `platform.max_text_length`.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_max_text_length() -> i32 {
    MAX_TEXT_LENGTH.get()
}

/// The Argon2id cost of new password hashes.
pub fn password_cost() -> passwords::Cost {
    passwords::Cost {
        memory_kib: PASSWORD_MEMORY_KIB.get() as u32,
        iterations: PASSWORD_ITERATIONS.get() as u32,
    }
}

/// `platform.tenant_context`.
pub fn tenant_context_mode() -> TenantContextMode {
    TENANT_CONTEXT.get()
}

/// `platform.tenant_token_max_ttl`, in seconds.
pub fn tenant_token_max_ttl() -> i64 {
    i64::from(TENANT_TOKEN_MAX_TTL.get())
}

/// Calls `f` with the text of a string setting, read in place (no copy).
fn with_string_setting<T>(
    setting: &'static GucSetting<Option<CString>>,
    f: impl FnOnce(&str) -> T,
) -> T {
    // SAFETY: the GUC machinery owns the string and replaces (never mutates)
    // it on change; `f` gets a borrow that cannot outlive this call, and
    // nothing it does in Rust sets the setting again while it holds it.
    let text = unsafe {
        let raw = *setting.as_ptr();
        if raw.is_null() {
            ""
        } else {
            CStr::from_ptr(raw).to_str().unwrap_or("\u{fffd}")
        }
    };
    f(text)
}

/// Calls `f` with `platform.tenant_keys` as written.
pub fn with_tenant_keys_text<T>(f: impl FnOnce(&str) -> T) -> T {
    with_string_setting(&TENANT_KEYS, f)
}

/// Calls `f` with `app.current_tenant_id` as written ('' when unset).
pub fn with_current_tenant_text<T>(f: impl FnOnce(&str) -> T) -> T {
    with_string_setting(&CURRENT_TENANT, f)
}

/// The window as days and microseconds, or `None` when it is off.
fn window_parts(minutes: i32) -> Option<(i32, i64)> {
    (minutes > 0).then(|| {
        (
            minutes / MINUTES_PER_DAY,
            i64::from(minutes % MINUTES_PER_DAY) * 60 * 1_000_000,
        )
    })
}

/// `platform.cost_late_event_window` as an interval, NULL when it is off.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_late_event_window() -> Option<Interval> {
    window_parts(LATE_EVENT_WINDOW.get()).map(|(days, micros)| {
        Interval::new(0, days, micros).expect("days and minutes of an i32 fit an interval")
    })
}

/// `platform.cost_reservation_timeout` as an interval.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_cost_reservation_timeout() -> Interval {
    Interval::new(0, 0, i64::from(RESERVATION_TIMEOUT.get()) * 1_000_000)
        .expect("at most a week of seconds fits an interval")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_the_window_off() {
        assert_eq!(window_parts(0), None);
    }

    #[test]
    fn whole_days_and_the_remaining_minutes() {
        assert_eq!(window_parts(35 * MINUTES_PER_DAY), Some((35, 0)));
        assert_eq!(
            window_parts(MINUTES_PER_DAY + 90),
            Some((1, 90 * 60 * 1_000_000))
        );
    }
}
