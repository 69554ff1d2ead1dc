//! `/api/imports…` and `/api/email-accounts/import/preview`: the import pipeline over HTTP.
//! Preview and commit are the same library call ([`import::run`]) in its two modes.

use std::collections::HashMap;
use std::io::Cursor;

use axum::Json;
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
use crate::import::{self, HeaderChoice, ImportOptions, ImportResult, LineResult, LineSink, Mode};
use crate::model::{AccountKind, Counts};

/// Rows of the first records a preview returns, for the raw view.
const SAMPLE_ROWS: usize = 20;
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

/// Collects every line's outcome.
#[derive(Default)]
struct Collect(Vec<ReviewLine>);

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

impl LineSink for Collect {
    fn line(&mut self, line: &LineResult<'_>) -> std::io::Result<()> {
        self.0.push(ReviewLine {
            line: line.line,
            outcome: line.outcome,
            user_email: unsplit_masked(line.user_email),
            account_address: unsplit_masked(line.account_address),
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
    options.strict = params.parse::<bool>("strict")?.unwrap_or(false);
    options.sample_rows = SAMPLE_ROWS;
    Ok(options)
}

/// The summary with what a preview adds: the columns, the first rows, the fingerprint.
fn described(result: &ImportResult, source: &str) -> Value {
    let mut value = serde_json::to_value(result.summary()).unwrap_or_else(|_| json!({}));
    value["bom"] = json!(result.bom);
    value["source"] = json!(source);
    value["columns"] = json!(result.columns);
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
    value["fingerprint"] = json!(result.fingerprint);
    value["file_sha256"] = json!(result.file_sha256);
    value
}

/// `POST /api/imports/preview`.
pub async fn preview(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let options = options(&params)?;
    let all = match params.get("lines") {
        None => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::parameter(
                "lines",
                format!("unknown value {other:?} (expected all)"),
            ));
        }
    };
    let upload = body::upload(request, state.settings.upload_limit).await?;
    let mut collect = Collect::default();
    let sink: Option<&mut dyn LineSink> = if all { Some(&mut collect) } else { None };
    let result = import::run(
        &state.store,
        &state.settings.key_source(),
        Cursor::new(upload.bytes),
        &options,
        Mode::Preview,
        sink,
    )
    .await?;
    let mut value = described(&result, &upload.name);
    if all {
        value["results"] = json!(collect.0);
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
    let options = options(&params)?;
    let fingerprint = params.get("fingerprint").map(str::to_owned);
    let upload = body::upload(request, state.settings.upload_limit).await?;
    let mode = Mode::Commit {
        actor: &actor,
        source: &upload.name,
        expected: fingerprint.as_deref(),
    };
    let result = import::run(
        &state.store,
        &state.settings.key_source(),
        Cursor::new(upload.bytes),
        &options,
        mode,
        None,
    )
    .await?;
    let mut value = described(&result, &upload.name);
    value["id"] = json!(result.id);
    value["push"] = super::push::after_change(&state).await;
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn import_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("no import with id {id:?}")))
}

/// `GET /api/imports/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let uuid = import_id(&id)?;
    let row = state
        .store
        .import(uuid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no import with id {id:?}")))?;
    let mut lines = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.import_lines(uuid, after, LINES_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = u64::try_from(last.line).unwrap_or(u64::MAX);
        let full = page.len() == usize::try_from(LINES_PAGE).unwrap_or(usize::MAX);
        lines.extend(page.into_iter().map(|l| {
            json!({ "line": l.line, "outcome": l.outcome, "field": l.field, "message": l.message,
                    "user_email": l.user_email, "account_address": l.account_address })
        }));
        if !full {
            break;
        }
    }
    Ok(Json(json!({
        "id": row.id, "type": row.kind, "source": row.source, "actor": row.actor,
        "created_at": row.created_at, "file_sha256": row.file_sha256,
        "encoding": row.encoding, "delimiter": row.delimiter, "header": row.header,
        "counts": { "rows": row.rows, "added": row.added, "updated": row.updated,
            "unchanged": row.unchanged, "discarded": row.discarded, "rejected": row.rejected,
            "duplicates": row.duplicates },
        "lines": lines,
    })))
}

/// `GET /api/imports/{id}/results.csv`.
pub async fn results_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let uuid = import_id(&id)?;
    if state.store.import(uuid).await?.is_none() {
        return Err(ApiError::not_found(format!("no import with id {id:?}")));
    }
    let mut runs = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.import_results(uuid, after, LINES_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = u64::try_from(*last).unwrap_or(u64::MAX);
        let full = page.len() == usize::try_from(LINES_PAGE).unwrap_or(usize::MAX);
        runs.extend(page.into_iter().map(|(_, run)| run));
        if !full {
            break;
        }
    }
    let mut csv = Vec::new();
    import::report::write_runs(&mut csv, runs.iter().map(Vec::as_slice))
        .map_err(|e| ApiError::internal("storage", &e))?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{uuid}-results.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

/// The body of `POST /api/email-accounts/import/preview`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountRows {
    #[serde(rename = "type")]
    kind: String,
    rows: Vec<HashMap<String, Value>>,
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
                    "unknown column {unknown:?} (expected {})",
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
    if input.rows.is_empty() {
        return Ok(Json(
            json!({ "type": kind, "counts": Counts::default(), "rows": [] }),
        ));
    }
    let (csv, lines) = rows_to_csv(kind, &input.rows)?;
    let mut options = ImportOptions::new(kind);
    options.delimiter = DelimiterChoice::Fixed(crate::csv::Delimiter::COMMA);
    options.encoding = EncodingChoice::Utf8;
    options.header = HeaderChoice::Yes;
    options.sample_rows = 0;
    let mut collect = Collect::default();
    let result = import::run(
        &state.store,
        &state.settings.key_source(),
        Cursor::new(csv),
        &options,
        Mode::Preview,
        Some(&mut collect),
    )
    .await?;
    let mut outcomes: Vec<Option<Value>> = vec![None; input.rows.len()];
    for line in collect.0 {
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
