//! The first step of a vector search that scans its scope instead of
//! walking HNSW (sql/search/vector.sql): the current tenant's rows nearest
//! to the query by embedding sketch, read straight from the index that
//! carries the sketches (knowledge_chunk_document_idx for chunks,
//! knowledge_category_idx for documents).
//!
//! The same ranking in SQL, an index-only scan under `ORDER BY sketch <~>
//! query, id LIMIT n`, spends most of its time in the executor's work per
//! row (a tuple slot, an expression, the sort), which for a large tenant is
//! most of the search; here a row costs the index's own step, a visibility
//! check and a popcount (docs/search.md has the figures).
//!
//! What it may see is what the caller's query would: only the rows of the
//! context's tenant (an index condition, from get_current_tenant_id(), never
//! an argument), only rows visible to the statement's snapshot, only with
//! SELECT on the table, and only ids leave, which the caller reads back as
//! the invoker under row-level security.

use std::collections::HashSet;
use std::ffi::CStr;
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTupleDesc;

use super::input::{check_embedding, without_nulls};
use super::raise;
use super::sketch::{hamming_distance, sketch_of, NearestSketches};
use crate::error::PlatformError;
use crate::tenancy::context::get_current_tenant_id;

/// How many index entries pass between two checks for a cancel request.
const ROWS_BETWEEN_INTERRUPT_CHECKS: u64 = 4096;

/// Where the columns a scan needs sit in the sketch index (attribute numbers
/// from 1, as PostgreSQL counts them).
struct SketchColumns {
    tenant: i16,
    id: i16,
    sketch: i16,
    /// knowledge_chunk_document_idx's second key column.
    document: Option<i16>,
    /// knowledge_category_idx's second key column.
    category: Option<i16>,
}

/// The ids of the `wanted` rows of the current tenant whose embedding
/// sketches are nearest to the query embedding's (Hamming distance, ties by
/// id), nearest first: the rows of `sketch_index`'s table limited to
/// `document_ids` (chunks) or `category` (documents) when given. Rows
/// without a sketch (a document without an embedding) are left out.
#[pg_extern(stable, create_or_replace)]
fn platform_nearest_sketches(
    sketch_index: Option<pg_sys::Oid>,
    query_embedding: Option<Vec<Option<f32>>>,
    wanted: Option<i32>,
    document_ids: Option<Vec<Option<pgrx::Uuid>>>,
    category: Option<&str>,
) -> Vec<pgrx::Uuid> {
    const NAME: &str = "platform_nearest_sketches";
    let sketch_index = sketch_index.unwrap_or_else(|| null_argument("sketch_index"));
    let query_embedding = query_embedding.unwrap_or_else(|| null_argument("query_embedding"));
    let query_embedding =
        without_nulls("the embedding", query_embedding).unwrap_or_else(|e| raise(e, NAME));
    check_embedding(&query_embedding).unwrap_or_else(|e| raise(e, NAME));
    let wanted = super::platform_checked_count(Some("wanted"), wanted, Some(1_000_000));
    let scope: Option<HashSet<[u8; 16]>> =
        document_ids.map(|ids| ids.into_iter().flatten().map(|id| *id.as_bytes()).collect());
    let tenant = get_current_tenant_id();
    if tenant.as_bytes() == &[0u8; 16] {
        return Vec::new(); // no tenant: nothing to read, as row-level security would say
    }
    let query = sketch_of(&query_embedding);
    let mut nearest = NearestSketches::new(wanted as usize);
    // SAFETY: the relations are opened and locked before use and closed at
    // the end (their locks held to the end of the transaction, as the
    // executor holds them); an error raised on the way releases them with
    // the transaction's resource owner.
    unsafe {
        let heap_oid = checked_sketch_table(sketch_index);
        let heap = pg_sys::table_open(heap_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(sketch_index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let columns = sketch_columns(index);
        if (scope.is_some() && columns.document.is_none())
            || (category.is_some() && columns.category.is_none())
        {
            refuse(PlatformError::SketchFilterMismatch);
        }
        scan(
            heap,
            index,
            &columns,
            *tenant.as_bytes(),
            category,
            scope.as_ref(),
            &query,
            &mut nearest,
        );
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
    nearest
        .into_ids()
        .into_iter()
        .map(pgrx::Uuid::from_bytes)
        .collect()
}

fn null_argument(name: &'static str) -> ! {
    refuse(PlatformError::NullArgument { name })
}

fn refuse(error: PlatformError) -> ! {
    error.raise("platform_nearest_sketches")
}

/// The table of `sketch_index` once it is known to be an index of one of
/// this extension's tables that the current user may read.
unsafe fn checked_sketch_table(sketch_index: pg_sys::Oid) -> pg_sys::Oid {
    if pg_sys::get_rel_relkind(sketch_index) as u8 != pg_sys::RELKIND_INDEX {
        refuse(PlatformError::NotASketchIndex {
            problem: format!("relation {} is not an index", sketch_index.to_u32()),
        });
    }
    // missing_ok: an index dropped since the check above is no index.
    let heap = pg_sys::IndexGetRelation(sketch_index, true);
    let platform = pg_sys::get_extension_oid(c"platform".as_ptr(), true);
    if heap == pg_sys::InvalidOid
        || platform == pg_sys::InvalidOid
        || pg_sys::getExtensionOfObject(pg_sys::RelationRelationId, heap) != platform
    {
        refuse(PlatformError::NotASketchIndex {
            problem: format!(
                "index {} is not on a table of the platform extension",
                sketch_index.to_u32()
            ),
        });
    }
    if pg_sys::pg_class_aclcheck(
        heap,
        pg_sys::GetUserId(),
        pg_sys::ACL_SELECT as pg_sys::AclMode,
    ) != pg_sys::AclResult::ACLCHECK_OK
    {
        refuse(PlatformError::SketchTableNotReadable);
    }
    heap
}

/// Finds the columns by name in the index's own tuple descriptor (an index
/// column is named after its table column).
unsafe fn sketch_columns(index: pg_sys::Relation) -> SketchColumns {
    // Borrowed from the relation cache: not released here.
    let descriptor = PgTupleDesc::from_pg_unchecked((*index).rd_att);
    let key_columns = (*(*index).rd_index).indnkeyatts;
    let found = |name: &CStr, type_oid: pg_sys::Oid, key: Option<i16>| -> Option<i16> {
        descriptor
            .iter()
            .zip(1i16..)
            .find(|(attribute, number)| {
                CStr::from_ptr(attribute.attname.data.as_ptr()) == name
                    && attribute.atttypid == type_oid
                    && key.is_none_or(|k| k == *number && *number <= key_columns)
            })
            .map(|(_, number)| number)
    };
    let columns = SketchColumns {
        tenant: found(c"tenant_id", pg_sys::UUIDOID, Some(1)).unwrap_or(0),
        id: found(c"id", pg_sys::UUIDOID, None).unwrap_or(0),
        sketch: found(c"embedding_sketch", pg_sys::BITOID, None).unwrap_or(0),
        document: found(c"document_id", pg_sys::UUIDOID, Some(2)),
        category: found(c"category", pg_sys::TEXTOID, Some(2)),
    };
    if columns.tenant == 0 || columns.id == 0 || columns.sketch == 0 {
        refuse(PlatformError::NotASketchIndex {
            problem: "the index does not lead with tenant_id and carry id and embedding_sketch"
                .into(),
        });
    }
    columns
}

/// Reads the tenant's entries of the index (and of `category` where the
/// index's second column is the category), skipping the ones the
/// statement's snapshot cannot see, and offers each row with a sketch to
/// `nearest`.
#[allow(clippy::too_many_arguments)]
unsafe fn scan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    columns: &SketchColumns,
    mut tenant: [u8; 16],
    category: Option<&str>,
    scope: Option<&HashSet<[u8; 16]>>,
    query: &[u8],
    nearest: &mut NearestSketches,
) {
    let mut keys: [pg_sys::ScanKeyData; 2] = std::mem::zeroed();
    pg_sys::ScanKeyEntryInitialize(
        &mut keys[0],
        0,
        columns.tenant,
        pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
        pg_sys::InvalidOid,
        pg_sys::InvalidOid,
        pg_sys::Oid::from(pg_sys::F_UUID_EQ),
        pg_sys::Datum::from(tenant.as_mut_ptr()),
    );
    let mut key_count = 1;
    if let (Some(category), Some(column)) = (category, columns.category) {
        // Compared in the index's own collation, so the scan finds the
        // entries where the index sorted them.
        let collation = *(*index).rd_indcollation.add(column as usize - 1);
        let text =
            pg_sys::cstring_to_text_with_len(category.as_ptr().cast(), category.len() as i32);
        pg_sys::ScanKeyEntryInitialize(
            &mut keys[1],
            0,
            column,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::InvalidOid,
            collation,
            pg_sys::Oid::from(pg_sys::F_TEXTEQ),
            pg_sys::Datum::from(text),
        );
        key_count = 2;
    }
    let snapshot = pg_sys::GetActiveSnapshot();
    #[cfg(feature = "pg18")]
    let scan = pg_sys::index_beginscan(heap, index, snapshot, ptr::null_mut(), key_count, 0);
    #[cfg(not(feature = "pg18"))]
    let scan = pg_sys::index_beginscan(heap, index, snapshot, key_count, 0);
    (*scan).xs_want_itup = true;
    pg_sys::index_rescan(scan, keys.as_mut_ptr(), key_count, ptr::null_mut(), 0);
    let slot = pg_sys::table_slot_create(heap, ptr::null_mut());
    let mut visibility = VisibilityPages::default();
    let natts = (*(*scan).xs_itupdesc).natts as usize;
    let mut values = vec![pg_sys::Datum::from(0usize); natts];
    let mut nulls = vec![false; natts];
    let mut seen = 0u64;
    loop {
        let tid = pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection);
        if tid.is_null() {
            break;
        }
        seen += 1;
        if seen % ROWS_BETWEEN_INTERRUPT_CHECKS == 0 {
            pgrx::check_for_interrupts!();
        }
        // As an index-only scan decides: a page all-visible in the
        // visibility map needs no heap visit, any other entry is checked
        // against the heap.
        let block = pgrx::itemptr::item_pointer_get_block_number(tid);
        let status = pg_sys::visibilitymap_get_status(heap, block, visibility.page_of(block));
        if u32::from(status) & pg_sys::VISIBILITYMAP_ALL_VISIBLE == 0
            && !pg_sys::index_fetch_heap(scan, slot)
        {
            continue;
        }
        pg_sys::index_deform_tuple(
            (*scan).xs_itup,
            (*scan).xs_itupdesc,
            values.as_mut_ptr(),
            nulls.as_mut_ptr(),
        );
        let at = |column: i16| column as usize - 1;
        if nulls[at(columns.sketch)] || nulls[at(columns.id)] {
            continue;
        }
        if let (Some(scope), Some(column)) = (scope, columns.document) {
            if nulls[at(column)] || !scope.contains(&uuid_bytes(values[at(column)])) {
                continue;
            }
        }
        let mut sketch: *const pg_sys::varlena = values[at(columns.sketch)].cast_mut_ptr();
        // An index keeps a value this small inline and uncompressed; anything
        // else is detoasted as usual (a call into PostgreSQL, which is what
        // the check saves on every other row).
        if !(pgrx::varlena::varatt_is_4b_u(sketch)
            || (pgrx::varlena::varatt_is_1b(sketch) && !pgrx::varlena::varatt_is_1b_e(sketch)))
        {
            sketch = pg_sys::pg_detoast_datum_packed(sketch.cast_mut());
        }
        // A bit string's payload: its length in bits, then the bytes.
        let payload = pgrx::varlena::vardata_any(sketch).cast::<u8>();
        let payload_length = pgrx::varlena::varsize_any_exhdr(sketch);
        let bits = std::slice::from_raw_parts(payload, payload_length);
        if let Some(distance) = bits.get(4..).and_then(|bits| hamming_distance(bits, query)) {
            nearest.offer(distance, uuid_bytes(values[at(columns.id)]));
        }
    }
    visibility.release();
    pg_sys::ExecDropSingleTupleTableSlot(slot);
    pg_sys::index_endscan(scan);
}

/// Heap blocks one visibility map page covers: two bits per block on a page
/// after its header (visibilitymap.c's HEAPBLOCKS_PER_PAGE).
// SAFETY: MAXALIGN only computes with its argument.
const HEAP_BLOCKS_PER_VISIBILITY_PAGE: u32 = (pg_sys::BLCKSZ
    - unsafe { pg_sys::MAXALIGN(std::mem::size_of::<pg_sys::PageHeaderData>()) } as u32)
    * 4;

/// The visibility map pages the scan has pinned, one buffer per page. The
/// index is in key order, not heap order, so consecutive entries of a large
/// table land on different map pages; with a single buffer, as an
/// index-only scan keeps, every such step releases one page and pins the
/// other, which cost a large tenant's scan more than everything else.
#[derive(Default)]
struct VisibilityPages {
    buffers: Vec<pg_sys::Buffer>,
}

impl VisibilityPages {
    /// The buffer slot for the map page covering `block`.
    fn page_of(&mut self, block: pg_sys::BlockNumber) -> &mut pg_sys::Buffer {
        let page = (block / HEAP_BLOCKS_PER_VISIBILITY_PAGE) as usize;
        if page >= self.buffers.len() {
            self.buffers
                .resize(page + 1, pg_sys::InvalidBuffer as pg_sys::Buffer);
        }
        &mut self.buffers[page]
    }

    /// Unpins every map page.
    unsafe fn release(&mut self) {
        for buffer in self.buffers.drain(..) {
            if buffer != pg_sys::InvalidBuffer as pg_sys::Buffer {
                pg_sys::ReleaseBuffer(buffer);
            }
        }
    }
}

/// The 16 bytes a uuid Datum points to.
unsafe fn uuid_bytes(datum: pg_sys::Datum) -> [u8; 16] {
    *datum.cast_mut_ptr::<[u8; 16]>()
}
