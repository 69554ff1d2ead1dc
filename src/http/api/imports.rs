//! `/api/imports…` and `/api/email-accounts/import/preview`: the import pipeline over HTTP.
//! Preview and commit are the same library call ([`import::run`]) in its two modes.

use std::collections::HashMap;
use std::io::Cursor;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Params;
use crate::csv::{DelimiterChoice, EncodingChoice, neutralize};
use crate::http::AppState;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::session::Actor;
use crate::import::history::{HistoryError, StoredResults};
use crate::import::{self, HeaderChoice, ImportOptions, ImportResult, LineResult, LineSink, Mode};
use crate::model::{AccountKind, Counts, Outcome};

/// Rows of the first records a preview returns, for the raw view.
const SAMPLE_ROWS: usize = 20;
/// The most lines' outcomes one preview answer lists.
pub const RESULTS_PAGE_MAX: i64 = 1000;

/// Stored lines read per query when listing an import's lines.
const LINES_PAGE: i64 = 1000;

/// One line's outcome in a review table.
#[derive(Debug, Clone, Serialize)]
struct ReviewLine {
    line: u64,
    outcome: crate::model::Outcome,
    user_email: String,
    account_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    message: String,
}

/// Which lines a preview's `results` lists (`results_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeFilter {
    /// Every line.
    All,
    /// The lines not applied: discarded, rejected and duplicate, what a review looks for.
    Problems,
    /// The lines of one outcome.
    Only(Outcome),
}

impl OutcomeFilter {
    fn admits(self, outcome: Outcome) -> bool {
        match self {
            OutcomeFilter::All => true,
            OutcomeFilter::Problems => !outcome.applied(),
            OutcomeFilter::Only(only) => outcome == only,
        }
    }
}

impl std::str::FromStr for OutcomeFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(OutcomeFilter::All),
            "problems" => Ok(OutcomeFilter::Problems),
            other => other.parse().map(OutcomeFilter::Only).map_err(|_| {
                format!("unknown outcome {other:?} (expected all, problems, added, updated, unchanged, discarded, rejected or duplicate)")
            }),
        }
    }
}

/// Collects one page of the outcomes of the lines `filter` admits: the `limit` after the
/// first `offset` of them. Only the page is kept, so a file of any size costs one page.
struct Collect {
    filter: OutcomeFilter,
    offset: u64,
    limit: u64,
    seen: u64,
    page: Vec<ReviewLine>,
}

/// Any of the delimiters a file may be split on.
const DELIMITERS: [char; 4] = [',', ';', '\t', '|'];

/// `cell` unless it holds a delimiter: then the line was split on the wrong one, the cell is
/// a whole line or several cells, and may hold a password, so it is masked.
fn unsplit_masked(cell: &str) -> String {
    if cell.contains(DELIMITERS) {
        import::MASK.to_owned()
    } else {
        cell.to_owned()
    }
}

impl Collect {
    fn page(filter: OutcomeFilter, offset: u64, limit: u64) -> Collect {
        Collect {
            filter,
            offset,
            limit,
            seen: 0,
            page: Vec::new(),
        }
    }
}

impl LineSink for Collect {
    fn line(&mut self, line: &LineResult<'_>) -> std::io::Result<()> {
        if !self.filter.admits(line.outcome) {
            return Ok(());
        }
        self.seen += 1;
        if self.seen <= self.offset || self.page.len() as u64 >= self.limit {
            return Ok(());
        }
        self.page.push(ReviewLine {
            line: line.line,
            outcome: line.outcome,
            // The values as written, so the admin sees what is wrong with them: a line split
            // on the wrong delimiter, whose cells may hold its passwords, comes with neither.
            user_email: line.user_email.to_owned(),
            account_address: line.account_address.to_owned(),
            field: line.field.map(str::to_owned),
            message: line.message.to_owned(),
        });
        Ok(())
    }
}

fn options(params: &Params) -> Result<ImportOptions, ApiError> {
    let mut options = ImportOptions::new(params.require::<AccountKind>("type")?);
    options.delimiter = params
        .parse::<DelimiterChoice>("delimiter")?
        .unwrap_or_default();
    options.encoding = params
        .parse::<EncodingChoice>("encoding")?
        .unwrap_or_default();
    options.header = params.parse::<HeaderChoice>("header")?.unwrap_or_default();
    options.missing_columns = match params.given("missing_columns")? {
        None | Some("refuse") => false,
        Some("reject") => true,
        Some(other) => {
            return Err(ApiError::parameter(
                "missing_columns",
                format!("unknown choice {other:?} (expected refuse or reject)"),
            ));
        }
    };
    options.sheet = params.given("sheet")?.map(str::to_owned);
    options.strict = params.parse::<bool>("strict")?.unwrap_or(false);
    options.sample_rows = SAMPLE_ROWS;
    Ok(options)
}

/// The column mapping the request gives: the saved `mapping`, with each `map` on top.
async fn mapping(
    state: &AppState,
    params: &Params,
    kind: AccountKind,
) -> Result<import::mapping::Mapping, ApiError> {
    use import::mapping::MappingError;
    let saved = params.given("mapping")?;
    import::mapping::resolve(&state.store, kind, saved, &params.all("map"))
        .await
        .map_err(|e| match e {
            MappingError::Store(_) => ApiError::internal("storage", &e),
            MappingError::NotFound { .. }
            | MappingError::OtherKind { .. }
            | MappingError::Damaged { .. } => ApiError::parameter("mapping", e.to_string()),
            _ => ApiError::parameter("map", e.to_string()),
        })
}

/// The summary with what a preview adds: the columns, the first rows, the fingerprint.
fn described(result: &ImportResult, source: &str) -> Value {
    let mut value = serde_json::to_value(result.summary()).unwrap_or_else(|_| json!({}));
    value["bom"] = json!(result.bom);
    value["source"] = json!(source);
    value["columns"] = json!(result.columns);
    value["fields"] = json!(result.fields);
    // A record narrower than the columns was split on the wrong delimiter: its cells are not
    // where the password masking expects them.
    let sample: Vec<_> = result
        .sample
        .iter()
        .map(|row| {
            let mut row = row.clone();
            if row.cells.len() < result.columns.len() {
                for cell in &mut row.cells {
                    *cell = unsplit_masked(cell);
                }
            }
            row
        })
        .collect();
    value["sample"] = json!(sample);
    if let Some(sheet) = &result.sheet {
        value["sheets"] = json!(sheet.sheets);
    }
    value["fingerprint"] = json!(result.fingerprint);
    value["file_sha256"] = json!(result.file_sha256);
    value["other_type"] = json!(result.other_type);
    value
}

/// `POST /api/imports/preview`.
pub async fn preview(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let mut options = options(&params)?;
    options.mapping = mapping(&state, &params, options.kind).await?;
    let offset = params.within("results_offset", 0, 0..=i64::MAX)?;
    let limit = params.within("results_limit", 0, 0..=RESULTS_PAGE_MAX)?;
    let filter = params
        .parse::<OutcomeFilter>("results_outcome")?
        .unwrap_or(OutcomeFilter::All);
    let upload = body::upload(request, state.settings.upload_limit).await?;
    options.size_hint = Some(upload.len);
    let mut collect = Collect::page(filter, offset.unsigned_abs(), limit.unsigned_abs());
    let sink: Option<&mut dyn LineSink> = (limit > 0).then_some(&mut collect as &mut dyn LineSink);
    let result = import::run(
        &state.store,
        &state.settings.key_source(),
        upload.file,
        &options,
        Mode::Preview,
        sink,
    )
    .await?;
    let mut value = described(&result, &upload.name);
    if limit > 0 {
        value["results"] = json!(collect.page);
    }
    Ok(Json(value))
}

/// `POST /api/imports`.
pub async fn commit(
    State(state): State<AppState>,
    axum::Extension(Actor(actor)): axum::Extension<Actor>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    let mut options = options(&params)?;
    options.mapping = mapping(&state, &params, options.kind).await?;
    let save_as = params.given("save_mapping")?.map(str::to_owned);
    let fingerprint = params.get("fingerprint").map(str::to_owned);
    let upload = body::upload(request, state.settings.upload_limit).await?;
    options.size_hint = Some(upload.len);
    let mode = Mode::Commit {
        actor: &actor,
        source: &upload.name,
        expected: fingerprint.as_deref(),
    };
    let result = import::run(
        &state.store,
        &state.settings.key_source(),
        upload.file,
        &options,
        mode,
        None,
    )
    .await?;
    if let Some(name) = &save_as {
        import::mapping::save(&state.store, name, options.kind, &options.mapping, &actor)
            .await
            .map_err(|e| ApiError::internal("storage", &e))?;
    }
    let mut value = described(&result, &upload.name);
    value["id"] = json!(result.id);
    value["push"] = super::push::after_change(&state).await;
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn import_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no import with id {id:?}")))
}

/// `GET /api/imports/{id}`: the import's summary and one page of the lines it did not
/// apply (or of those of one `outcome`), after line `after`; `next` continues.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let uuid = import_id(&id)?;
    let after = params.within("after", 0, 0..=i64::MAX)?.unsigned_abs();
    let limit = params.limit(100, LINES_PAGE)?;
    // Only the lines not applied are kept; asking for another outcome is a mistake.
    let outcome = params.parse::<Outcome>("outcome")?;
    if let Some(applied) = outcome.filter(|o| o.applied()) {
        return Err(ApiError::parameter(
            "outcome",
            format!(
                "an import keeps only the lines it did not apply (discarded, rejected, duplicate), not {} ones",
                applied.as_str()
            ),
        ));
    }
    let row = state
        .store
        .import(uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no import with id {id:?}")))?;
    let page = state
        .store
        .import_lines(uuid, after, limit, outcome)
        .await?;
    let next = (page.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| page.last().map(|l| l.line))
        .flatten();
    let lines: Vec<Value> = page
        .into_iter()
        .map(|l| {
            json!({ "line": l.line, "outcome": l.outcome, "field": l.field, "message": l.message,
                    "user_email": l.user_email, "account_address": l.account_address })
        })
        .collect();
    Ok(Json(json!({
        "id": row.id, "type": row.kind, "source": row.source, "actor": row.actor,
        "created_at": row.created_at, "file_sha256": row.file_sha256,
        "encoding": row.encoding, "delimiter": row.delimiter, "header": row.header,
        "counts": { "rows": row.rows, "added": row.added, "updated": row.updated,
            "unchanged": row.unchanged, "discarded": row.discarded, "rejected": row.rejected,
            "duplicates": row.duplicates },
        "lines": lines,
        "next": next,
    })))
}

/// `GET /api/imports/{id}/results.csv`.
pub async fn results_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let uuid = import_id(&id)?;
    let Some((_, mut results)) = StoredResults::open(&state.store, uuid).await? else {
        return Err(ApiError::not_found(format!("no import with id {id:?}")));
    };
    // The first piece is read before answering, so a store that fails at once gets a proper
    // error; the rest streams, and a failure later cuts the download short.
    let first = results
        .next_chunk()
        .await
        .map_err(|e| ApiError::internal("storage", &e))?
        .unwrap_or_default();
    let rest = futures_util::stream::try_unfold(results, |mut results| async move {
        let chunk = results.next_chunk().await.inspect_err(|e| {
            tracing::error!(error = %e, "results download failed half-way; it is cut short");
        })?;
        Ok::<_, HistoryError>(chunk.map(|chunk| (Bytes::from(chunk), results)))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(Bytes::from(first)) }),
        rest,
    );
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                crate::http::attachment(&format!("import-{uuid}-results.csv")),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// `GET /api/imports`: a page of past imports, newest first; `next` continues.
pub async fn list(State(state): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let limit = params.limit(50, LINES_PAGE)?;
    let before = params.parse::<Uuid>("after")?;
    let imports = state.store.list_imports(before, limit).await?;
    let next = (imports.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| imports.last().map(|i| i.id))
        .flatten();
    Ok(Json(json!({ "imports": imports, "next": next })))
}

/// `GET /api/mappings`: the saved column mappings.
pub async fn mappings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let listed = import::mapping::list(&state.store)
        .await
        .map_err(|e| ApiError::internal("storage", &e))?;
    Ok(Json(json!({ "mappings": listed })))
}

/// The body of `POST /api/email-accounts/import/preview`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountRows {
    #[serde(rename = "type")]
    kind: String,
    rows: LimitedRows,
}

/// The most rows one JSON preview takes; a larger batch is a file to upload.
pub const ROWS_MAX: usize = 10_000;

/// The first [`ROWS_MAX`] rows of the array, and how many it holds. Rows past the limit are
/// skipped as they are parsed, never built, so a body of millions of `{}` costs no memory.
struct LimitedRows {
    rows: Vec<HashMap<String, Value>>,
    total: u64,
}

impl<'de> serde::Deserialize<'de> for LimitedRows {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rows;
        impl<'de> serde::de::Visitor<'de> for Rows {
            type Value = LimitedRows;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of rows")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<LimitedRows, A::Error> {
                let mut rows = Vec::new();
                while rows.len() < ROWS_MAX {
                    match seq.next_element()? {
                        Some(row) => rows.push(row),
                        None => {
                            let total = rows.len() as u64;
                            return Ok(LimitedRows { rows, total });
                        }
                    }
                }
                let mut total = rows.len() as u64;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(LimitedRows { rows, total })
            }
        }
        deserializer.deserialize_seq(Rows)
    }
}

/// Renders JSON rows as a CSV file with a header of canonical names, and notes the physical
/// line each row starts on.
fn rows_to_csv(
    kind: AccountKind,
    rows: &[HashMap<String, Value>],
) -> Result<(Vec<u8>, HashMap<u64, usize>), ApiError> {
    let columns = import::schema::columns(kind);
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let write_error = |e: ::csv::Error| ApiError::internal("csv", &e);
    writer
        .write_record(columns.iter().map(|c| c.name))
        .map_err(write_error)?;
    let mut line: u64 = 2;
    let mut lines = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        if let Some(unknown) = row
            .keys()
            .find(|k| !columns.iter().any(|c| c.name == k.as_str()))
        {
            return Err(ApiError::parameter(
                &format!("rows[{index}]"),
                format!(
                    "unknown column {} (expected {})",
                    crate::model::quoted(unknown),
                    columns
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let mut cells = Vec::with_capacity(columns.len());
        for column in columns {
            let cell = match row.get(column.name) {
                None | Some(Value::Null) => String::new(),
                // The reader takes password cells literally and undoes the neutralisation
                // of the others: each value arrives as given.
                Some(Value::String(s)) if import::schema::is_password(column.name) => s.clone(),
                Some(Value::String(s)) => neutralize(s).into_owned(),
                Some(_) => {
                    return Err(ApiError::parameter(
                        &format!("rows[{index}].{}", column.name),
                        "must be a string",
                    ));
                }
            };
            cells.push(cell);
        }
        lines.insert(line, index);
        line += 1 + cells
            .iter()
            .map(|c| c.matches('\n').count() as u64)
            .sum::<u64>();
        writer.write_record(&cells).map_err(write_error)?;
    }
    let csv = writer
        .into_inner()
        .map_err(|e| ApiError::internal("csv", e.error()))?;
    Ok((csv, lines))
}

/// `POST /api/email-accounts/import/preview`: the rows rendered to CSV in memory and
/// previewed by the same pipeline as a file.
pub async fn preview_rows(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let input: AccountRows = body::json(request, state.settings.upload_limit).await?;
    let kind: AccountKind = input
        .kind
        .parse()
        .map_err(|e| ApiError::parameter("type", e))?;
    if input.rows.total > ROWS_MAX as u64 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_rows",
            format!(
                "{} rows: at most {ROWS_MAX} are previewed per request; send them in batches, or upload them as a file to /api/imports/preview",
                input.rows.total
            ),
        ));
    }
    let input = input.rows.rows;
    if input.is_empty() {
        return Ok(Json(
            json!({ "type": kind, "counts": Counts::default(), "rows": [] }),
        ));
    }
    let (csv, lines) = rows_to_csv(kind, &input)?;
    let mut options = ImportOptions::new(kind);
    options.delimiter = DelimiterChoice::Fixed(crate::csv::Delimiter::COMMA);
    options.encoding = EncodingChoice::Utf8;
    options.header = HeaderChoice::Yes;
    options.sample_rows = 0;
    let mut collect = Collect::page(OutcomeFilter::All, 0, ROWS_MAX as u64);
    let result = import::run(
        &state.store,
        &state.settings.key_source(),
        Cursor::new(csv),
        &options,
        Mode::Preview,
        Some(&mut collect),
    )
    .await?;
    let mut outcomes: Vec<Option<Value>> = vec![None; input.len()];
    for line in collect.page {
        if let Some(&row) = lines.get(&line.line) {
            outcomes[row] = Some(json!({ "row": row, "outcome": line.outcome,
                "field": line.field, "message": line.message }));
        }
    }
    let rows: Vec<Value> = outcomes
        .into_iter()
        .enumerate()
        .map(|(row, outcome)| {
            // A row of nothing but empty cells is a blank line to the reader.
            outcome.unwrap_or_else(|| {
                json!({ "row": row, "outcome": "rejected",
                "field": null, "message": "the row is empty" })
            })
        })
        .collect();
    Ok(Json(
        json!({ "type": kind, "counts": result.counts, "rows": rows }),
    ))
}
