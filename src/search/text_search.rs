//! Keyword queries as PostgreSQL values. The question's words come from
//! PostgreSQL's own text search parser (`to_tsvector`, `websearch_to_tsquery`)
//! and every tsquery built from lexemes is text from
//! `keyword_query::lexeme_query` read by PostgreSQL's tsquery input function:
//! user text is never spliced into SQL or tsquery syntax anywhere else.

use std::ffi::CString;

use pgrx::callconv::{ArgAbi, BoxRet};
use pgrx::datum::Datum;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable,
};
use pgrx::prelude::*;
use pgrx::{direct_function_call, direct_function_call_as_datum, pg_sys, FromDatum, IntoDatum};

use crate::error::PlatformError;
use crate::search::input::check_size;
use crate::search::keyword_query::{distinctive, lexeme_query, Combine, KeywordMatch};
use crate::search::{check_text_length, raise};
use crate::settings;

/// At most platform.max_query_terms words: each costs an index probe.
fn check_terms(count: usize, function: &'static str) {
    check_size(
        "the query",
        "distinct words",
        count,
        settings::max_query_terms(),
        "platform.max_query_terms",
    )
    .unwrap_or_else(|e| raise(e, function));
}

/// A `tsquery` value.
pub struct TsQuery(pg_sys::Datum);

impl TsQuery {
    /// PostgreSQL's reading of tsquery text built by `lexeme_query`, which
    /// quotes every lexeme: only a lexeme PostgreSQL refuses anyway (longer
    /// than a tsquery operand may be) fails, with PostgreSQL's own error.
    fn parse(text: &str) -> Self {
        let text = CString::new(text).expect("a lexeme from PostgreSQL holds no NUL");
        // SAFETY: tsqueryin takes one cstring argument and returns a tsquery.
        let datum = unsafe {
            direct_function_call_as_datum(pg_sys::tsqueryin, &[text.as_c_str().into_datum()])
        };
        TsQuery(datum.expect("tsqueryin returns a value"))
    }

    fn of_lexemes(
        lexemes: &[Option<String>],
        combine: Combine,
        function: &'static str,
    ) -> Option<Self> {
        check_terms(lexemes.len(), function);
        let lexemes: Vec<&str> = lexemes.iter().flatten().map(String::as_str).collect();
        lexeme_query(&lexemes, combine).map(|text| Self::parse(&text))
    }

    /// Whether it has no operand (what a text of stop words parses to).
    fn is_empty(&self) -> bool {
        // SAFETY: tsquery_numnode takes a tsquery and returns int4.
        let nodes =
            unsafe { direct_function_call::<i32>(pg_sys::tsquery_numnode, &[Some(self.0)]) };
        nodes == Some(0)
    }
}

/// A PostgreSQL value that a Rust function returns as the datum PostgreSQL
/// made (`$sql` is its SQL type, `$oid` its type oid).
macro_rules! returned_datum {
    ($name:ident, $sql:literal, $oid:expr) => {
        impl IntoDatum for $name {
            fn into_datum(self) -> Option<pg_sys::Datum> {
                Some(self.0)
            }

            fn type_oid() -> pg_sys::Oid {
                $oid
            }
        }

        unsafe impl SqlTranslatable for $name {
            const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!($name);
            const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
                pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
            const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> =
                Ok(SqlMappingRef::literal($sql));
            const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
                Ok(ReturnsRef::One(SqlMappingRef::literal($sql)));
        }

        unsafe impl BoxRet for $name {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
            ) -> Datum<'fcx> {
                unsafe { fcinfo.return_raw_datum(self.0) }
            }
        }
    };
}

/// An argument of a STRICT function read through the type's FromDatum.
macro_rules! argument_from_datum {
    ($name:ident) => {
        unsafe impl<'fcx> ArgAbi<'fcx> for $name {
            unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }
        }
    };
}

returned_datum!(TsQuery, "tsquery", pg_sys::TSQUERYOID);

/// A `tsvector` value.
pub struct TsVector(pg_sys::Datum);

returned_datum!(TsVector, "tsvector", pg_sys::TSVECTOROID);

impl TsVector {
    /// The value's bytes after its varlena header, detoasted (into the
    /// current memory context, which outlives the call that reads them).
    pub fn body(&self) -> &[u8] {
        // SAFETY: the datum is a tsvector (a varlena); detoasting returns
        // a pointer to its in-memory form, valid for the rest of the call.
        unsafe {
            let value = pg_sys::pg_detoast_datum_packed(self.0.cast_mut_ptr());
            std::slice::from_raw_parts(
                pgrx::varlena::vardata_any(value).cast::<u8>(),
                pgrx::varlena::varsize_any_exhdr(value),
            )
        }
    }
}

impl FromDatum for TsVector {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then_some(TsVector(datum))
    }
}

argument_from_datum!(TsVector);

/// A text search configuration, by its oid.
pub struct RegConfig(pg_sys::Oid);

impl RegConfig {
    /// The configuration `name` names, by PostgreSQL's own lookup (42704 for
    /// an unknown name, along the function's search_path), and existing: a
    /// bare number names any oid.
    fn named(name: &str, function: &'static str) -> Self {
        let name = CString::new(name).expect("a text from PostgreSQL holds no NUL");
        // SAFETY: regconfigin takes one cstring and returns an oid.
        let datum = unsafe {
            direct_function_call_as_datum(pg_sys::regconfigin, &[name.as_c_str().into_datum()])
        }
        .expect("regconfigin returns a value");
        let config = RegConfig(pg_sys::Oid::from(datum.value() as u32));
        if !config.exists() {
            PlatformError::UnknownTextSearchConfig {
                oid: config.0.to_u32(),
            }
            .raise(function);
        }
        config
    }

    /// Whether a configuration of this oid exists (a regconfig may be any
    /// number, and PostgreSQL's text search functions fail with an internal
    /// error on one that names nothing).
    fn exists(&self) -> bool {
        // SAFETY: a syscache probe by oid, the one key of TSCONFIGOID.
        unsafe {
            pg_sys::SearchSysCacheExists(
                pg_sys::SysCacheIdentifier::TSCONFIGOID as i32,
                pg_sys::Datum::from(self.0),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
            )
        }
    }
}

impl FromDatum for RegConfig {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then(|| RegConfig(pg_sys::Oid::from(datum.value() as u32)))
    }
}

argument_from_datum!(RegConfig);

unsafe impl SqlTranslatable for RegConfig {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(RegConfig);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> =
        Ok(SqlMappingRef::literal("regconfig"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("regconfig")));
}

/// A row's text under the text search configuration it names
/// (`to_tsvector(config::regconfig, body)`): what the stored search_vector
/// columns are generated with. Rows store the configuration's name, not its
/// oid, because pg_upgrade refuses tables with regconfig columns (oids differ
/// between major versions). The name is looked up with pg_catalog first, so a
/// row's name ('english', 'schema.name' elsewhere) finds the same
/// configuration in every session; IMMUTABLE like to_tsvector(regconfig,
/// text), which it is for a name that keeps meaning one configuration, as a
/// row's must (sql/search/text_search.sql).
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
#[search_path(pg_catalog, pg_temp)]
fn platform_tsvector(config: &str, body: &str) -> TsVector {
    let config = RegConfig::named(config, "platform_tsvector");
    // SAFETY: to_tsvector(regconfig, text) returns a tsvector.
    let vector = unsafe {
        direct_function_call_as_datum(
            pg_sys::to_tsvector_byid,
            &[config.0.into_datum(), body.into_datum()],
        )
    };
    TsVector(vector.expect("to_tsvector returns a value"))
}

/// A tsquery matching rows that hold any of `lexemes` (taken as they are:
/// no stemming, no syntax); NULL for an empty list.
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
fn platform_lexemes_any(lexemes: Vec<Option<String>>) -> Option<TsQuery> {
    TsQuery::of_lexemes(&lexemes, Combine::AnyOf, "platform_lexemes_any")
}

/// A tsquery matching rows that hold every one of `lexemes`; NULL for an
/// empty list.
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
fn platform_lexemes_all(lexemes: Vec<Option<String>>) -> Option<TsQuery> {
    TsQuery::of_lexemes(&lexemes, Combine::AllOf, "platform_lexemes_all")
}

/// The keyword query of a question, and the words its rows are scored by:
///   'all': websearch_to_tsquery, which never raises a syntax error: every
///          word must match, quotes make phrases, -word excludes; scored by
///          all of the question's words.
///   'any': rows holding any of the question's distinctive words: its words
///          (stemmed, stop words dropped) that some of the tenant's chunks
///          (or, with `documents`, documents) hold but not more than
///          platform.common_word_share of them, or all of them if none is;
///          scored by those.
/// The query is NULL when the text has no words left.
#[pg_extern(stable, create_or_replace)]
#[search_path(pg_catalog, @extschema@, pg_temp)]
fn platform_keyword_query(
    query_text: Option<&str>,
    config: Option<RegConfig>,
    keyword_match: Option<&str>,
    documents: Option<bool>,
) -> TableIterator<
    'static,
    (
        name!(query, Option<TsQuery>),
        name!(lexemes, Option<Vec<String>>),
    ),
> {
    const NAME: &str = "platform_keyword_query";
    let mode = KeywordMatch::parse(keyword_match).unwrap_or_else(|e| raise(e, NAME));
    let config =
        config.unwrap_or_else(|| PlatformError::NullArgument { name: "config" }.raise(NAME));
    if !config.exists() {
        PlatformError::UnknownTextSearchConfig {
            oid: config.0.to_u32(),
        }
        .raise(NAME);
    }
    let documents = documents.unwrap_or(false);
    let text = query_text.unwrap_or("");
    // Bounded before anything else reads the text: its length, then its words
    // (in either mode; an 'all' query's operators come with its words).
    check_text_length(text, NAME);
    let words = lexemes_of(text, &config);
    check_terms(words.len(), NAME);
    let row = match mode {
        KeywordMatch::All => {
            // SAFETY: websearch_to_tsquery(regconfig, text) returns a tsquery.
            let query = unsafe {
                direct_function_call_as_datum(
                    pg_sys::websearch_to_tsquery_byid,
                    &[config.0.into_datum(), text.into_datum()],
                )
            }
            .map(TsQuery)
            .filter(|query| !query.is_empty());
            (query, Some(words))
        }
        KeywordMatch::Any => {
            let common = common_lexemes(documents, &words);
            let kept = distinctive(words, &common);
            let query = TsQuery::of_lexemes(
                &kept.iter().cloned().map(Some).collect::<Vec<_>>(),
                Combine::AnyOf,
                NAME,
            );
            (query, Some(kept))
        }
    };
    TableIterator::once(row)
}

/// `tsvector_to_array(to_tsvector(config, text))`: the text's distinct
/// lexemes, in the configuration's stemming, stop words dropped.
fn lexemes_of(text: &str, config: &RegConfig) -> Vec<String> {
    // SAFETY: to_tsvector(regconfig, text) returns a tsvector, and
    // tsvector_to_array a text[] without NULLs.
    unsafe {
        let vector = direct_function_call_as_datum(
            pg_sys::to_tsvector_byid,
            &[config.0.into_datum(), text.into_datum()],
        );
        direct_function_call::<Vec<String>>(pg_sys::tsvector_to_array, &[vector])
    }
    .unwrap_or_default()
}

/// Which of `words` narrow nothing in the tenant's rows, by
/// platform_common_lexemes() (SECURITY DEFINER: it reads the statistics).
fn common_lexemes(documents: bool, words: &[String]) -> Vec<String> {
    if words.is_empty() {
        return Vec::new();
    }
    Spi::get_one_with_args::<Vec<String>>(
        "SELECT platform_common_lexemes($1, $2)",
        &[documents.into(), words.to_vec().into()],
    )
    .unwrap_or_else(|e| panic!("platform_common_lexemes failed: {e}"))
    .unwrap_or_default()
}
