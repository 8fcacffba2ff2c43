//! The Hive Metastore Thrift API: one handler per connection (it holds the
//! connection's `set_ugi` user), each call delegated to the catalog and its
//! errors mapped once to the exception types the method declares. Calls a
//! client makes routinely but that have no meaning here (roles,
//! privileges, transactions, notifications) answer empty, as a metastore
//! with nothing of that kind would; everything else answers
//! TApplicationException UNKNOWN_METHOD (the generated defaults).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;

use inlet_hms_thrift::fb303::{self, FbStatus};
use inlet_hms_thrift::hive_metastore::*;
use inlet_hms_thrift::ConnectionInfo;
use thrift::{ApplicationError, ApplicationErrorKind};
use tokio::runtime::Handle;

use crate::catalog::{Actor, Catalog, CatalogError};
use crate::metrics::Metrics;

/// Exception types a Thrift method may declare.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ex {
    NoSuchObject,
    AlreadyExists,
    InvalidObject,
    InvalidOperation,
    Meta,
    UnknownDb,
    NoSuchLock,
}

fn meta(message: String) -> thrift::Error {
    thrift::Error::User(Box::new(MetaException { message: Some(message) }))
}

fn build(kind: Ex, message: String) -> thrift::Error {
    let m = Some(message);
    match kind {
        Ex::NoSuchObject => thrift::Error::User(Box::new(NoSuchObjectException { message: m })),
        Ex::AlreadyExists => thrift::Error::User(Box::new(AlreadyExistsException { message: m })),
        Ex::InvalidObject => thrift::Error::User(Box::new(InvalidObjectException { message: m })),
        Ex::InvalidOperation => thrift::Error::User(Box::new(InvalidOperationException { message: m })),
        Ex::UnknownDb => thrift::Error::User(Box::new(UnknownDBException { message: m })),
        Ex::NoSuchLock => thrift::Error::User(Box::new(NoSuchLockException { message: m })),
        Ex::Meta => thrift::Error::User(Box::new(MetaException { message: m })),
    }
}

/// Maps a catalog error to the first of the method's declared exceptions
/// that fits; MetaException (declared by nearly every method) otherwise.
fn to_thrift(e: CatalogError, declared: &[Ex]) -> thrift::Error {
    let (preferred, message) = match &e {
        CatalogError::NoSuchObject(m) => (Ex::NoSuchObject, m.clone()),
        CatalogError::AlreadyExists(m) => (Ex::AlreadyExists, m.clone()),
        CatalogError::InvalidObject(m) => (Ex::InvalidObject, m.clone()),
        CatalogError::InvalidOperation(m) => (Ex::InvalidOperation, m.clone()),
        CatalogError::NoSuchLock(m) => (Ex::NoSuchLock, m.clone()),
        CatalogError::Invalid(m) | CatalogError::Storage(m) | CatalogError::Conflict(m) => (Ex::Meta, m.clone()),
        CatalogError::Store(s) => (Ex::Meta, s.to_string()),
    };
    if declared.contains(&preferred) {
        return build(preferred, message);
    }
    if preferred == Ex::NoSuchObject && declared.contains(&Ex::UnknownDb) && message.contains("database") {
        return build(Ex::UnknownDb, message);
    }
    if declared.contains(&Ex::Meta) || declared.is_empty() {
        return meta(message);
    }
    build(declared[0], message)
}

const GET: &[Ex] = &[Ex::NoSuchObject, Ex::Meta];
const CREATE: &[Ex] = &[Ex::AlreadyExists, Ex::InvalidObject, Ex::Meta, Ex::NoSuchObject];
const ALTER: &[Ex] = &[Ex::InvalidOperation, Ex::Meta];
const DROP: &[Ex] = &[Ex::NoSuchObject, Ex::InvalidOperation, Ex::Meta];
const META: &[Ex] = &[Ex::Meta];

/// Serves one connection.
pub struct Handler {
    catalog: Catalog,
    runtime: Handle,
    metrics: Metrics,
    conn: ConnectionInfo,
    /// The user of `set_ugi`, for the audit log.
    user: RefCell<Option<String>>,
    started: i64,
    config: BTreeMap<String, String>,
}

impl Handler {
    pub fn new(catalog: Catalog, runtime: Handle, metrics: Metrics, conn: ConnectionInfo, config: BTreeMap<String, String>) -> Handler {
        metrics.connection_opened();
        Handler { catalog, runtime, metrics, conn, user: RefCell::new(None), started: crate::store::now_ms() / 1000, config }
    }

    fn actor(&self) -> Actor {
        Actor::thrift(self.user.borrow().as_deref())
    }

    /// Runs one catalog call on the runtime, timing and counting it.
    fn run<T>(&self, method: &'static str, declared: &[Ex], fut: impl std::future::Future<Output = Result<T, CatalogError>>) -> thrift::Result<T> {
        let start = Instant::now();
        let result = self.runtime.block_on(fut);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CatalogError::Store(_)) | Err(CatalogError::Storage(_)) => "error",
            Err(_) => "exception",
        };
        if let Err(e @ (CatalogError::Store(_) | CatalogError::Storage(_))) = &result {
            tracing::warn!(method, peer = %self.conn.peer, error = %e, "metastore call failed");
        }
        self.metrics.observe("thrift", method, outcome, start.elapsed());
        result.map_err(|e| to_thrift(e, declared))
    }

    fn table_with_stats(&self, mut t: Table, db: &str, name: &str, get_stats: bool) -> thrift::Result<Table> {
        if get_stats {
            let cols: Vec<String> = t.sd.iter().flat_map(|s| s.cols.iter().flatten()).filter_map(|c| c.name.clone()).collect();
            let stats = self.run("get_table_req", GET, self.catalog.table_column_statistics(db, name, &cols))?;
            if !stats.is_empty() {
                t.col_stats = Some(ColumnStatistics {
                    stats_desc: ColumnStatisticsDesc { is_tbl_level: true, db_name: db.to_string(), table_name: name.to_string(), part_name: None, last_analyzed: None, cat_name: None },
                    stats_obj: stats,
                    is_stats_compliant: None,
                    engine: None,
                });
            }
        }
        Ok(t)
    }

    fn fields(&self, method: &'static str, db: String, table: String, with_partition_keys: bool) -> thrift::Result<Vec<FieldSchema>> {
        let t = self.run(method, &[Ex::Meta, Ex::NoSuchObject], self.catalog.get_table(&db, &table)).map_err(|e| match e {
            // get_fields declares UnknownTableException for a missing table.
            thrift::Error::User(u) if u.downcast_ref::<NoSuchObjectException>().is_some() => thrift::Error::User(Box::new(UnknownTableException { message: Some(format!("{db}.{table} table not found")) })),
            e => e,
        })?;
        let mut cols: Vec<FieldSchema> = t.sd.and_then(|s| s.cols).unwrap_or_default();
        if with_partition_keys {
            cols.extend(t.partition_keys.unwrap_or_default());
        }
        Ok(cols)
    }

    fn column_statistics(&self, db: &str, table: &str, part: Option<&str>, col: &str, objs: Vec<ColumnStatisticsObj>, last_analyzed: Option<i64>) -> thrift::Result<ColumnStatistics> {
        if objs.is_empty() {
            return Err(build(Ex::NoSuchObject, format!("Column stats doesn't exist for db={db} table={table} col={col}")));
        }
        Ok(ColumnStatistics {
            stats_desc: ColumnStatisticsDesc { is_tbl_level: part.is_none(), db_name: db.to_string(), table_name: table.to_string(), part_name: part.map(String::from), last_analyzed, cat_name: None },
            stats_obj: objs,
            is_stats_compliant: None,
            engine: None,
        })
    }

    fn drop_partition_by_values(&self, method: &'static str, db: String, table: String, values: Vec<String>, delete_data: bool) -> thrift::Result<bool> {
        let dropped = self.run(method, DROP, self.catalog.drop_partitions(&self.actor(), &db, &table, vec![values], delete_data, false))?;
        Ok(!dropped.is_empty())
    }

    fn drop_partition_named(&self, method: &'static str, db: String, table: String, name: String, delete_data: bool) -> thrift::Result<bool> {
        let t = self.run(method, DROP, self.catalog.get_table(&db, &table))?;
        let values = self.catalog.values_from_name(&t, &name).map_err(|e| to_thrift(e, DROP))?;
        self.drop_partition_by_values(method, db, table, values, delete_data)
    }
}

fn max_parts(n: i16) -> i32 {
    n as i32
}

fn unsupported(what: &str) -> thrift::Error {
    meta(format!("{what} is not supported by this metastore"))
}

impl fb303::FacebookServiceSyncHandler for Handler {
    fn handle_get_name(&self) -> thrift::Result<String> {
        Ok("inlet metastore".into())
    }
    fn handle_get_version(&self) -> thrift::Result<String> {
        Ok(env!("CARGO_PKG_VERSION").into())
    }
    fn handle_get_status(&self) -> thrift::Result<FbStatus> {
        Ok(FbStatus::ALIVE)
    }
    fn handle_get_status_details(&self) -> thrift::Result<String> {
        Ok("serving".into())
    }
    fn handle_alive_since(&self) -> thrift::Result<i64> {
        Ok(self.started)
    }
    fn handle_get_counters(&self) -> thrift::Result<BTreeMap<String, i64>> {
        Ok(BTreeMap::new())
    }
    /// Clients send `shutdown` when they close (Hive's client does). It
    /// ends nothing but the client's own session: the server keeps serving.
    fn handle_shutdown(&self) -> thrift::Result<()> {
        tracing::debug!(peer = %self.conn.peer, "client sent shutdown (closing its session)");
        Ok(())
    }
    fn handle_reinitialize(&self) -> thrift::Result<()> {
        Ok(())
    }
}

impl ThriftHiveMetastoreSyncHandler for Handler {
    // ---- session ----------------------------------------------------------

    fn handle_set_ugi(&self, user_name: String, group_names: Vec<String>) -> thrift::Result<Vec<String>> {
        *self.user.borrow_mut() = Some(user_name.clone());
        // As Hive: the groups, with the user name added when missing.
        let mut out = group_names;
        if !out.contains(&user_name) {
            out.push(user_name);
        }
        Ok(out)
    }

    fn handle_get_config_value(&self, name: String, default_value: String) -> thrift::Result<String> {
        // Hive answers only these namespaces; everything else (the JDO
        // connection password, say) is a security exception.
        if !["hive.", "hdfs.", "mapred."].iter().any(|p| name.starts_with(p)) {
            return Err(thrift::Error::User(Box::new(ConfigValSecurityException { message: Some(format!("For security reasons, the config key {name} cannot be accessed")) })));
        }
        Ok(self.config.get(&name).cloned().unwrap_or(default_value))
    }

    // ---- databases --------------------------------------------------------

    fn handle_create_database(&self, database: Database) -> thrift::Result<()> {
        self.run("create_database", &[Ex::AlreadyExists, Ex::InvalidObject, Ex::Meta], self.catalog.create_database(&self.actor(), database))
    }

    fn handle_get_database(&self, name: String) -> thrift::Result<Database> {
        self.run("get_database", GET, self.catalog.get_database(&name))
    }

    fn handle_get_database_req(&self, request: GetDatabaseRequest) -> thrift::Result<Database> {
        let name = request.name.unwrap_or_default();
        self.run("get_database_req", GET, self.catalog.get_database(&name))
    }

    fn handle_get_databases(&self, pattern: String) -> thrift::Result<Vec<String>> {
        self.run("get_databases", META, self.catalog.list_databases(Some(&pattern)))
    }

    fn handle_get_all_databases(&self) -> thrift::Result<Vec<String>> {
        self.run("get_all_databases", META, self.catalog.list_databases(None))
    }

    fn handle_alter_database(&self, dbname: String, db: Database) -> thrift::Result<()> {
        self.run("alter_database", &[Ex::Meta, Ex::NoSuchObject], self.catalog.alter_database(&self.actor(), &dbname, db))
    }

    fn handle_drop_database(&self, name: String, delete_data: bool, cascade: bool) -> thrift::Result<()> {
        self.run("drop_database", DROP, self.catalog.drop_database(&self.actor(), &name, delete_data, cascade))
    }

    // ---- tables -----------------------------------------------------------

    fn handle_create_table(&self, tbl: Table) -> thrift::Result<()> {
        self.run("create_table", CREATE, self.catalog.create_table(&self.actor(), tbl)).map(|_| ())
    }

    fn handle_create_table_with_environment_context(&self, tbl: Table, _ctx: EnvironmentContext) -> thrift::Result<()> {
        self.run("create_table_with_environment_context", CREATE, self.catalog.create_table(&self.actor(), tbl)).map(|_| ())
    }

    fn handle_create_table_req(&self, request: CreateTableRequest) -> thrift::Result<()> {
        self.run("create_table_req", CREATE, self.catalog.create_table(&self.actor(), request.table)).map(|_| ())
    }

    fn handle_get_table(&self, dbname: String, tbl_name: String) -> thrift::Result<Table> {
        self.run("get_table", GET, self.catalog.get_table(&dbname, &tbl_name))
    }

    fn handle_get_table_req(&self, req: GetTableRequest) -> thrift::Result<GetTableResult> {
        let t = self.run("get_table_req", GET, self.catalog.get_table(&req.db_name, &req.tbl_name))?;
        let t = self.table_with_stats(t, &req.db_name, &req.tbl_name, req.get_column_stats.unwrap_or(false))?;
        Ok(GetTableResult { table: t, is_stats_compliant: None })
    }

    fn handle_get_tables(&self, db_name: String, pattern: String) -> thrift::Result<Vec<String>> {
        self.run("get_tables", META, self.catalog.list_tables(&db_name, Some(&pattern), None))
    }

    fn handle_get_tables_by_type(&self, db_name: String, pattern: String, table_type: String) -> thrift::Result<Vec<String>> {
        self.run("get_tables_by_type", META, self.catalog.list_tables(&db_name, Some(&pattern), Some(&table_type)))
    }

    fn handle_get_all_tables(&self, db_name: String) -> thrift::Result<Vec<String>> {
        self.run("get_all_tables", META, self.catalog.list_tables(&db_name, None, None))
    }

    fn handle_get_table_objects_by_name(&self, dbname: String, tbl_names: Vec<String>) -> thrift::Result<Vec<Table>> {
        self.run("get_table_objects_by_name", &[Ex::Meta, Ex::InvalidOperation, Ex::UnknownDb], self.catalog.get_tables_by_name(&dbname, &tbl_names))
    }

    fn handle_get_table_objects_by_name_req(&self, req: GetTablesRequest) -> thrift::Result<GetTablesResult> {
        let names = match req.tbl_names {
            Some(n) => n,
            None => self.run("get_table_objects_by_name_req", &[Ex::Meta], self.catalog.list_tables(&req.db_name, None, None))?,
        };
        let tables = self.run("get_table_objects_by_name_req", &[Ex::Meta, Ex::InvalidOperation, Ex::UnknownDb], self.catalog.get_tables_by_name(&req.db_name, &names))?;
        Ok(GetTablesResult { tables })
    }

    fn handle_get_table_meta(&self, db_patterns: String, tbl_patterns: String, tbl_types: Vec<String>) -> thrift::Result<Vec<TableMeta>> {
        self.run("get_table_meta", META, self.catalog.table_meta(&db_patterns, &tbl_patterns, &tbl_types))
    }

    fn handle_get_table_names_by_filter(&self, _dbname: String, _filter: String, _max_tables: i16) -> thrift::Result<Vec<String>> {
        Err(build(Ex::InvalidOperation, "table filters are not supported by this metastore".into()))
    }

    fn handle_alter_table(&self, dbname: String, tbl_name: String, new_tbl: Table) -> thrift::Result<()> {
        self.run("alter_table", ALTER, self.catalog.alter_table(&self.actor(), &dbname, &tbl_name, new_tbl, false))
    }

    fn handle_alter_table_with_environment_context(&self, dbname: String, tbl_name: String, new_tbl: Table, ctx: EnvironmentContext) -> thrift::Result<()> {
        let cascade = ctx.properties.as_ref().and_then(|p| p.get("CASCADE")).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        self.run("alter_table_with_environment_context", ALTER, self.catalog.alter_table(&self.actor(), &dbname, &tbl_name, new_tbl, cascade))
    }

    fn handle_alter_table_with_cascade(&self, dbname: String, tbl_name: String, new_tbl: Table, cascade: bool) -> thrift::Result<()> {
        self.run("alter_table_with_cascade", ALTER, self.catalog.alter_table(&self.actor(), &dbname, &tbl_name, new_tbl, cascade))
    }

    fn handle_alter_table_req(&self, req: AlterTableRequest) -> thrift::Result<AlterTableResponse> {
        let cascade = req.environment_context.as_ref().and_then(|c| c.properties.as_ref()).and_then(|p| p.get("CASCADE")).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        self.run("alter_table_req", ALTER, self.catalog.alter_table(&self.actor(), &req.db_name, &req.table_name, req.table, cascade))?;
        Ok(AlterTableResponse {})
    }

    fn handle_drop_table(&self, dbname: String, name: String, delete_data: bool) -> thrift::Result<()> {
        self.run("drop_table", &[Ex::NoSuchObject, Ex::Meta], self.catalog.drop_table(&self.actor(), &dbname, &name, delete_data))
    }

    fn handle_drop_table_with_environment_context(&self, dbname: String, name: String, delete_data: bool, _ctx: EnvironmentContext) -> thrift::Result<()> {
        self.run("drop_table_with_environment_context", &[Ex::NoSuchObject, Ex::Meta], self.catalog.drop_table(&self.actor(), &dbname, &name, delete_data))
    }

    fn handle_get_fields(&self, db_name: String, table_name: String) -> thrift::Result<Vec<FieldSchema>> {
        self.fields("get_fields", db_name, table_name, false)
    }

    fn handle_get_fields_with_environment_context(&self, db_name: String, table_name: String, _ctx: EnvironmentContext) -> thrift::Result<Vec<FieldSchema>> {
        self.fields("get_fields_with_environment_context", db_name, table_name, false)
    }

    fn handle_get_schema(&self, db_name: String, table_name: String) -> thrift::Result<Vec<FieldSchema>> {
        self.fields("get_schema", db_name, table_name, true)
    }

    fn handle_get_schema_with_environment_context(&self, db_name: String, table_name: String, _ctx: EnvironmentContext) -> thrift::Result<Vec<FieldSchema>> {
        self.fields("get_schema_with_environment_context", db_name, table_name, true)
    }

    // ---- partitions -------------------------------------------------------

    fn handle_add_partition(&self, new_part: Partition) -> thrift::Result<Partition> {
        self.add_one("add_partition", new_part)
    }

    fn handle_add_partition_with_environment_context(&self, new_part: Partition, _ctx: EnvironmentContext) -> thrift::Result<Partition> {
        self.add_one("add_partition_with_environment_context", new_part)
    }

    fn handle_add_partitions(&self, new_parts: Vec<Partition>) -> thrift::Result<i32> {
        let Some(first) = new_parts.first() else { return Ok(0) };
        let (db, table) = (first.db_name.clone().unwrap_or_default(), first.table_name.clone().unwrap_or_default());
        let added = self.run("add_partitions", CREATE, self.catalog.add_partitions(&self.actor(), &db, &table, new_parts, false))?;
        Ok(added.len() as i32)
    }

    fn handle_add_partitions_req(&self, request: AddPartitionsRequest) -> thrift::Result<AddPartitionsResult> {
        let added = self.run("add_partitions_req", CREATE, self.catalog.add_partitions(&self.actor(), &request.db_name, &request.tbl_name, request.parts, request.if_not_exists))?;
        let need = request.need_result.unwrap_or(true);
        Ok(AddPartitionsResult { partitions: need.then_some(added), is_stats_compliant: None, partition_col_schema: None })
    }

    fn handle_append_partition(&self, db_name: String, tbl_name: String, part_vals: Vec<String>) -> thrift::Result<Partition> {
        self.run("append_partition", &[Ex::InvalidObject, Ex::AlreadyExists, Ex::Meta], self.catalog.append_partition(&self.actor(), &db_name, &tbl_name, part_vals))
    }

    fn handle_append_partition_by_name(&self, db_name: String, tbl_name: String, part_name: String) -> thrift::Result<Partition> {
        let t = self.run("append_partition_by_name", &[Ex::InvalidObject, Ex::Meta], self.catalog.get_table(&db_name, &tbl_name))?;
        let values = self.catalog.values_from_name(&t, &part_name).map_err(|e| to_thrift(e, META))?;
        self.run("append_partition_by_name", &[Ex::InvalidObject, Ex::AlreadyExists, Ex::Meta], self.catalog.append_partition(&self.actor(), &db_name, &tbl_name, values))
    }

    fn handle_get_partition(&self, db_name: String, tbl_name: String, part_vals: Vec<String>) -> thrift::Result<Partition> {
        self.run("get_partition", &[Ex::Meta, Ex::NoSuchObject], self.catalog.get_partition(&db_name, &tbl_name, &part_vals))
    }

    fn handle_get_partition_with_auth(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, _user: String, _groups: Vec<String>) -> thrift::Result<Partition> {
        self.run("get_partition_with_auth", &[Ex::Meta, Ex::NoSuchObject], self.catalog.get_partition(&db_name, &tbl_name, &part_vals))
    }

    fn handle_get_partition_by_name(&self, db_name: String, tbl_name: String, part_name: String) -> thrift::Result<Partition> {
        self.run("get_partition_by_name", &[Ex::Meta, Ex::NoSuchObject], self.catalog.get_partition_by_name(&db_name, &tbl_name, &part_name))
    }

    fn handle_get_partitions(&self, db_name: String, tbl_name: String, max: i16) -> thrift::Result<Vec<Partition>> {
        self.run("get_partitions", GET, self.catalog.list_partitions(&db_name, &tbl_name, max_parts(max)))
    }

    fn handle_get_partitions_with_auth(&self, db_name: String, tbl_name: String, max: i16, _user: String, _groups: Vec<String>) -> thrift::Result<Vec<Partition>> {
        self.run("get_partitions_with_auth", GET, self.catalog.list_partitions(&db_name, &tbl_name, max_parts(max)))
    }

    fn handle_get_partitions_ps(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, max: i16) -> thrift::Result<Vec<Partition>> {
        self.run("get_partitions_ps", GET, self.catalog.partitions_ps(&db_name, &tbl_name, &part_vals, max_parts(max)))
    }

    fn handle_get_partitions_ps_with_auth(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, max: i16, _user: String, _groups: Vec<String>) -> thrift::Result<Vec<Partition>> {
        self.run("get_partitions_ps_with_auth", GET, self.catalog.partitions_ps(&db_name, &tbl_name, &part_vals, max_parts(max)))
    }

    fn handle_get_partition_names(&self, db_name: String, tbl_name: String, max: i16) -> thrift::Result<Vec<String>> {
        self.run("get_partition_names", GET, self.catalog.list_partition_names(&db_name, &tbl_name, max_parts(max)))
    }

    fn handle_get_partition_names_ps(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, max: i16) -> thrift::Result<Vec<String>> {
        self.run("get_partition_names_ps", GET, self.catalog.partition_names_ps(&db_name, &tbl_name, &part_vals, max_parts(max)))
    }

    fn handle_get_partitions_by_filter(&self, db_name: String, tbl_name: String, filter: String, max: i16) -> thrift::Result<Vec<Partition>> {
        self.run("get_partitions_by_filter", GET, self.catalog.partitions_by_filter(&db_name, &tbl_name, &filter, max_parts(max)))
    }

    fn handle_get_num_partitions_by_filter(&self, db_name: String, tbl_name: String, filter: String) -> thrift::Result<i32> {
        self.run("get_num_partitions_by_filter", GET, self.catalog.count_partitions_by_filter(&db_name, &tbl_name, &filter))
    }

    fn handle_get_partitions_by_names(&self, db_name: String, tbl_name: String, names: Vec<String>) -> thrift::Result<Vec<Partition>> {
        self.run("get_partitions_by_names", GET, self.catalog.partitions_by_names(&db_name, &tbl_name, &names))
    }

    fn handle_get_partitions_by_names_req(&self, req: GetPartitionsByNamesRequest) -> thrift::Result<GetPartitionsByNamesResult> {
        let names = req.names.unwrap_or_default();
        let partitions = self.run("get_partitions_by_names_req", GET, self.catalog.partitions_by_names(&req.db_name, &req.tbl_name, &names))?;
        Ok(GetPartitionsByNamesResult { partitions, dictionary: None })
    }

    fn handle_drop_partition(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, delete_data: bool) -> thrift::Result<bool> {
        self.drop_partition_by_values("drop_partition", db_name, tbl_name, part_vals, delete_data)
    }

    fn handle_drop_partition_with_environment_context(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, delete_data: bool, _ctx: EnvironmentContext) -> thrift::Result<bool> {
        self.drop_partition_by_values("drop_partition_with_environment_context", db_name, tbl_name, part_vals, delete_data)
    }

    fn handle_drop_partition_by_name(&self, db_name: String, tbl_name: String, part_name: String, delete_data: bool) -> thrift::Result<bool> {
        self.drop_partition_named("drop_partition_by_name", db_name, tbl_name, part_name, delete_data)
    }

    fn handle_drop_partition_by_name_with_environment_context(&self, db_name: String, tbl_name: String, part_name: String, delete_data: bool, _ctx: EnvironmentContext) -> thrift::Result<bool> {
        self.drop_partition_named("drop_partition_by_name_with_environment_context", db_name, tbl_name, part_name, delete_data)
    }

    fn handle_drop_partitions_req(&self, req: DropPartitionsRequest) -> thrift::Result<DropPartitionsResult> {
        let names = match req.parts {
            RequestPartsSpec::Names(names) => names,
            RequestPartsSpec::Exprs(_) => return Err(unsupported("Dropping partitions by serialized expressions")),
        };
        let t = self.run("drop_partitions_req", DROP, self.catalog.get_table(&req.db_name, &req.tbl_name))?;
        let values = names.iter().map(|n| self.catalog.values_from_name(&t, n)).collect::<Result<Vec<_>, _>>().map_err(|e| to_thrift(e, DROP))?;
        let dropped = self.run(
            "drop_partitions_req",
            DROP,
            self.catalog.drop_partitions(&self.actor(), &req.db_name, &req.tbl_name, values, req.delete_data.unwrap_or(true), req.if_exists.unwrap_or(true)),
        )?;
        Ok(DropPartitionsResult { partitions: req.need_result.unwrap_or(true).then_some(dropped) })
    }

    fn handle_alter_partition(&self, db_name: String, tbl_name: String, new_part: Partition) -> thrift::Result<()> {
        self.run("alter_partition", ALTER, self.catalog.alter_partitions(&self.actor(), &db_name, &tbl_name, vec![new_part]))
    }

    fn handle_alter_partition_with_environment_context(&self, db_name: String, tbl_name: String, new_part: Partition, _ctx: EnvironmentContext) -> thrift::Result<()> {
        self.run("alter_partition_with_environment_context", ALTER, self.catalog.alter_partitions(&self.actor(), &db_name, &tbl_name, vec![new_part]))
    }

    fn handle_alter_partitions(&self, db_name: String, tbl_name: String, new_parts: Vec<Partition>) -> thrift::Result<()> {
        self.run("alter_partitions", ALTER, self.catalog.alter_partitions(&self.actor(), &db_name, &tbl_name, new_parts))
    }

    fn handle_alter_partitions_with_environment_context(&self, db_name: String, tbl_name: String, new_parts: Vec<Partition>, _ctx: EnvironmentContext) -> thrift::Result<()> {
        self.run("alter_partitions_with_environment_context", ALTER, self.catalog.alter_partitions(&self.actor(), &db_name, &tbl_name, new_parts))
    }

    fn handle_alter_partitions_req(&self, req: AlterPartitionsRequest) -> thrift::Result<AlterPartitionsResponse> {
        self.run("alter_partitions_req", ALTER, self.catalog.alter_partitions(&self.actor(), &req.db_name, &req.table_name, req.partitions))?;
        Ok(AlterPartitionsResponse {})
    }

    fn handle_rename_partition(&self, db_name: String, tbl_name: String, part_vals: Vec<String>, new_part: Partition) -> thrift::Result<()> {
        self.run("rename_partition", ALTER, self.catalog.rename_partition(&self.actor(), &db_name, &tbl_name, &part_vals, new_part))
    }

    fn handle_partition_name_to_vals(&self, part_name: String) -> thrift::Result<Vec<String>> {
        let pairs = crate::names::parse_part_name(&part_name).map_err(|e| meta(e.to_string()))?;
        Ok(pairs.into_iter().map(|(_, v)| v).collect())
    }

    fn handle_partition_name_to_spec(&self, part_name: String) -> thrift::Result<BTreeMap<String, String>> {
        let pairs = crate::names::parse_part_name(&part_name).map_err(|e| meta(e.to_string()))?;
        Ok(pairs.into_iter().collect())
    }

    fn handle_get_partitions_by_expr(&self, _req: PartitionsByExprRequest) -> thrift::Result<PartitionsByExprResult> {
        // The expression is a Kryo-serialised Java object tree: only a JVM
        // can read it. Hive's client falls back to get_partitions_by_filter
        // on UNKNOWN_METHOD, so answer exactly that.
        Err(thrift::Error::Application(ApplicationError::new(ApplicationErrorKind::UnknownMethod, "get_partitions_by_expr is not supported; use get_partitions_by_filter")))
    }

    // ---- statistics -------------------------------------------------------

    fn handle_update_table_column_statistics(&self, stats_obj: ColumnStatistics) -> thrift::Result<bool> {
        self.run("update_table_column_statistics", &[Ex::NoSuchObject, Ex::InvalidObject, Ex::Meta], self.catalog.update_column_statistics(&self.actor(), stats_obj))
    }

    fn handle_update_partition_column_statistics(&self, stats_obj: ColumnStatistics) -> thrift::Result<bool> {
        self.run("update_partition_column_statistics", &[Ex::NoSuchObject, Ex::InvalidObject, Ex::Meta], self.catalog.update_column_statistics(&self.actor(), stats_obj))
    }

    fn handle_get_table_column_statistics(&self, db_name: String, tbl_name: String, col_name: String) -> thrift::Result<ColumnStatistics> {
        let (objs, last) = self.run("get_table_column_statistics", GET, self.catalog.table_column_statistics_desc(&db_name, &tbl_name, std::slice::from_ref(&col_name)))?;
        self.column_statistics(&db_name, &tbl_name, None, &col_name, objs, last)
    }

    fn handle_get_partition_column_statistics(&self, db_name: String, tbl_name: String, part_name: String, col_name: String) -> thrift::Result<ColumnStatistics> {
        let mut map = self.run(
            "get_partition_column_statistics",
            GET,
            self.catalog.partition_column_statistics_desc(&db_name, &tbl_name, std::slice::from_ref(&part_name), std::slice::from_ref(&col_name)),
        )?;
        let (objs, last) = map.remove(&part_name).unwrap_or_default();
        self.column_statistics(&db_name, &tbl_name, Some(&part_name), &col_name, objs, last)
    }

    fn handle_get_table_statistics_req(&self, request: TableStatsRequest) -> thrift::Result<TableStatsResult> {
        let stats = self.run("get_table_statistics_req", GET, self.catalog.table_column_statistics(&request.db_name, &request.tbl_name, &request.col_names))?;
        Ok(TableStatsResult { table_stats: stats, is_stats_compliant: None })
    }

    fn handle_get_partitions_statistics_req(&self, request: PartitionsStatsRequest) -> thrift::Result<PartitionsStatsResult> {
        let stats = self.run(
            "get_partitions_statistics_req",
            GET,
            self.catalog.partition_column_statistics(&request.db_name, &request.tbl_name, &request.part_names, &request.col_names),
        )?;
        Ok(PartitionsStatsResult { part_stats: stats, is_stats_compliant: None })
    }

    fn handle_delete_table_column_statistics(&self, db_name: String, tbl_name: String, col_name: String, _engine: String) -> thrift::Result<bool> {
        let col = (!col_name.is_empty()).then_some(col_name.as_str());
        self.run("delete_table_column_statistics", &[Ex::NoSuchObject, Ex::Meta, Ex::InvalidObject], self.catalog.delete_column_statistics(&self.actor(), &db_name, &tbl_name, None, col))
    }

    fn handle_delete_partition_column_statistics(&self, db_name: String, tbl_name: String, part_name: String, col_name: String, _engine: String) -> thrift::Result<bool> {
        let col = (!col_name.is_empty()).then_some(col_name.as_str());
        self.run(
            "delete_partition_column_statistics",
            &[Ex::NoSuchObject, Ex::Meta, Ex::InvalidObject],
            self.catalog.delete_column_statistics(&self.actor(), &db_name, &tbl_name, Some(&part_name), col),
        )
    }

    // ---- functions --------------------------------------------------------

    fn handle_create_function(&self, func: Function) -> thrift::Result<()> {
        self.run("create_function", &[Ex::AlreadyExists, Ex::InvalidObject, Ex::Meta, Ex::NoSuchObject], self.catalog.create_function(&self.actor(), func))
    }

    fn handle_get_function(&self, db_name: String, func_name: String) -> thrift::Result<Function> {
        self.run("get_function", GET, self.catalog.get_function(&db_name, &func_name))
    }

    fn handle_get_functions(&self, db_name: String, pattern: String) -> thrift::Result<Vec<String>> {
        self.run("get_functions", META, self.catalog.list_functions(&db_name, Some(&pattern)))
    }

    fn handle_get_all_functions(&self) -> thrift::Result<GetAllFunctionsResponse> {
        let functions = self.run("get_all_functions", META, self.catalog.all_functions())?;
        Ok(GetAllFunctionsResponse { functions: Some(functions) })
    }

    fn handle_drop_function(&self, db_name: String, func_name: String) -> thrift::Result<()> {
        self.run("drop_function", &[Ex::NoSuchObject, Ex::Meta], self.catalog.drop_function(&self.actor(), &db_name, &func_name))
    }

    fn handle_alter_function(&self, db_name: String, func_name: String, new_func: Function) -> thrift::Result<()> {
        self.run("alter_function", &[Ex::InvalidOperation, Ex::Meta], self.catalog.alter_function(&self.actor(), &db_name, &func_name, new_func))
    }

    // ---- locks ------------------------------------------------------------

    fn handle_lock(&self, rqst: LockRequest) -> thrift::Result<LockResponse> {
        self.run("lock", &[Ex::Meta], self.catalog.lock(rqst))
    }

    fn handle_check_lock(&self, rqst: CheckLockRequest) -> thrift::Result<LockResponse> {
        self.run("check_lock", &[Ex::NoSuchLock, Ex::Meta], self.catalog.check_lock(rqst.lockid))
    }

    fn handle_unlock(&self, rqst: UnlockRequest) -> thrift::Result<()> {
        self.run("unlock", &[Ex::NoSuchLock, Ex::Meta], self.catalog.unlock(rqst.lockid))
    }

    fn handle_heartbeat(&self, ids: HeartbeatRequest) -> thrift::Result<()> {
        match ids.lockid {
            Some(id) => self.run("heartbeat", &[Ex::NoSuchLock, Ex::Meta], self.catalog.heartbeat(id)),
            None => Ok(()),
        }
    }

    fn handle_show_locks(&self, rqst: ShowLocksRequest) -> thrift::Result<ShowLocksResponse> {
        self.run("show_locks", META, self.catalog.show_locks(&rqst))
    }

    // ---- what this metastore has none of: empty answers -----------------

    fn handle_get_current_notification_event_id(&self) -> thrift::Result<CurrentNotificationEventId> {
        Ok(CurrentNotificationEventId { event_id: 0 })
    }

    fn handle_get_role_names(&self) -> thrift::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn handle_list_roles(&self, _principal_name: String, _principal_type: PrincipalType) -> thrift::Result<Vec<Role>> {
        Ok(Vec::new())
    }

    fn handle_get_principals_in_role(&self, _request: GetPrincipalsInRoleRequest) -> thrift::Result<GetPrincipalsInRoleResponse> {
        Ok(GetPrincipalsInRoleResponse { principal_grants: Vec::new() })
    }

    fn handle_get_role_grants_for_principal(&self, _request: GetRoleGrantsForPrincipalRequest) -> thrift::Result<GetRoleGrantsForPrincipalResponse> {
        Ok(GetRoleGrantsForPrincipalResponse { principal_grants: Vec::new() })
    }

    fn handle_list_privileges(&self, _principal_name: String, _principal_type: PrincipalType, _hive_object: HiveObjectRef) -> thrift::Result<Vec<HiveObjectPrivilege>> {
        Ok(Vec::new())
    }

    fn handle_get_privilege_set(&self, _hive_object: HiveObjectRef, _user_name: String, _group_names: Vec<String>) -> thrift::Result<PrincipalPrivilegeSet> {
        Ok(PrincipalPrivilegeSet { user_privileges: Some(BTreeMap::new()), group_privileges: Some(BTreeMap::new()), role_privileges: Some(BTreeMap::new()) })
    }

    fn handle_get_open_txns(&self) -> thrift::Result<GetOpenTxnsResponse> {
        Ok(GetOpenTxnsResponse { txn_high_water_mark: 0, open_txns: Vec::new(), min_open_txn: None, aborted_bits: Vec::new() })
    }

    fn handle_get_all_token_identifiers(&self) -> thrift::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

impl Handler {
    fn add_one(&self, method: &'static str, part: Partition) -> thrift::Result<Partition> {
        let (db, table) = (part.db_name.clone().unwrap_or_default(), part.table_name.clone().unwrap_or_default());
        let mut added = self.run(method, &[Ex::InvalidObject, Ex::AlreadyExists, Ex::Meta], self.catalog.add_partitions(&self.actor(), &db, &table, vec![part], false))?;
        added.pop().ok_or_else(|| build(Ex::AlreadyExists, "Partition already exists".into()))
    }
}

