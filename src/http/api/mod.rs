//! The JSON API under `/api`. Every route is declared once, as an [`Operation`] with its
//! handler and the scope it [`Needs`]: the router, the scope check and the OpenAPI document
//! are all built from the declarations, so they cannot drift apart. Adding a route is one `.route(Operation { … }, handler)`
//! entry in [`api`].

pub mod directory;
mod export;
mod imports;
pub mod openapi;
mod profile;
pub mod push;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};
use axum::{Extension, Json, Router};

use super::AppState;
use super::error::ApiError;
use super::session::Needs;
use crate::model::Scope;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// A `{name}` segment of the path.
    Path,
    /// A query parameter.
    Query,
}

/// A documented parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Path or query.
    pub location: In,
    /// Whether it must be given.
    pub required: bool,
    /// JSON Schema type: `string`, `integer` or `boolean`.
    pub kind: &'static str,
    /// The values it takes, when it is one of a few.
    pub values: &'static [&'static str],
    /// What it means.
    pub description: &'static str,
    /// The smallest and largest values of a whole number, when it is bounded.
    pub range: Option<(i64, i64)>,
}

/// A documented response.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// What it means.
    pub description: &'static str,
    /// Media types the body may have; none for an empty body.
    pub media: &'static [&'static str],
    /// Name of the schema under `components.schemas` for JSON bodies.
    pub schema: Option<&'static str>,
}

/// One route of the API and its documentation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// HTTP method.
    pub method: Method,
    /// Path in axum's (and OpenAPI's) `{param}` syntax.
    pub path: &'static str,
    /// OpenAPI `operationId`.
    pub id: &'static str,
    /// Group.
    pub tag: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// What the caller must have been granted.
    pub needs: Needs,
    /// Parameters.
    pub params: Vec<Param>,
    /// Accepted request bodies: (media type, schema name).
    pub body: Vec<(&'static str, &'static str)>,
    /// Responses besides 401, which every route has.
    pub replies: Vec<Reply>,
}

/// The API being assembled: the router and the declarations it was built from.
pub struct Api {
    router: Router<AppState>,
    operations: Vec<Operation>,
}

impl Api {
    fn new() -> Api {
        Api {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Adds `handler` at `operation`'s method and path behind the scope it needs, and
    /// `operation` to the document.
    pub fn route<H, T>(mut self, operation: Operation, handler: H) -> Api
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(operation.method.clone())
            .unwrap_or_else(|_| unreachable!("only standard methods are declared"));
        let checked = on(filter, handler).layer(axum::middleware::from_fn_with_state(
            operation.needs,
            super::session::require_scope,
        ));
        self.router = self.router.route(operation.path, checked);
        self.operations.push(operation);
        self
    }

    /// Every declared route.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }
}

/// Query parameters, parsed with errors that name the parameter.
pub struct Params {
    map: HashMap<String, String>,
    /// Every pair in order, for parameters that repeat (`map=…&map=…`).
    pairs: Vec<(String, String)>,
}

impl Params {
    fn of(pairs: Vec<(String, String)>) -> Params {
        Params {
            map: pairs.iter().cloned().collect(),
            pairs,
        }
    }

    /// Every value of a parameter given once or more, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must not be given empty (`name=`): an empty choice or
    /// number is a mistake, not a request for the default.
    pub fn given(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.map.get(name) {
            Some(value) if value.is_empty() => Err(ApiError::parameter(name, "is empty")),
            value => Ok(value.map(String::as_str)),
        }
    }

    /// `name` parsed, or `None` when absent; refused when given empty.
    pub fn parse<T>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.given(name)?
            .map(|v| v.parse().map_err(|e| ApiError::parameter(name, e)))
            .transpose()
    }

    /// `name` parsed; an error when absent.
    pub fn require<T>(&self, name: &str) -> Result<T, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.parse(name)?
            .ok_or_else(|| ApiError::parameter(name, "required"))
    }

    /// A page size: `limit`, default `default`, at most `max`.
    pub fn limit(&self, default: i64, max: i64) -> Result<i64, ApiError> {
        self.within("limit", default, 1..=max)
    }

    /// The whole number `name`, `default` when absent, refused outside `range`.
    pub fn within(
        &self,
        name: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, ApiError> {
        let value = self.parse::<i64>(name)?.unwrap_or(default);
        if !range.contains(&value) {
            return Err(ApiError::parameter(
                name,
                format!("must be between {} and {}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(parts.uri.query().unwrap_or(""))
            .map(Params::of)
            .map_err(|e| {
                ApiError::parameter("query", format!("Failed to deserialize query string: {e}"))
            })
    }
}

const Q: In = In::Query;
const P: In = In::Path;

const fn param(
    name: &'static str,
    location: In,
    required: bool,
    kind: &'static str,
    description: &'static str,
) -> Param {
    Param {
        name,
        location,
        required,
        kind,
        values: &[],
        description,
        range: None,
    }
}

const fn json(status: u16, description: &'static str, schema: &'static str) -> Reply {
    Reply {
        status,
        description,
        media: &["application/json"],
        schema: Some(schema),
    }
}

const fn error(status: u16, description: &'static str) -> Reply {
    json(status, description, "Error")
}

/// Lists and fetches.
const READ: Needs = Needs {
    scope: Scope::Read,
    redacted_by: None,
};
/// Imports, adds, removes and retries.
const WRITE: Needs = Needs {
    scope: Scope::Write,
    redacted_by: None,
};

/// 204 of a removal.
const REMOVED: Reply = Reply {
    status: 204,
    description: "Removed",
    media: &[],
    schema: None,
};

const IMPORT_TYPE: Param = Param {
    values: &["email", "exchange"],
    ..param("type", Q, true, "string", "Account type of the rows.")
};
const IMPORT_OPTIONS: [Param; 7] = [
    IMPORT_TYPE,
    Param {
        values: &["auto", "comma", "semicolon", "tab", "pipe"],
        ..param(
            "delimiter",
            Q,
            false,
            "string",
            "Delimiter; detected by default.",
        )
    },
    Param {
        values: &["auto", "utf-8", "utf-16", "windows-1252"],
        ..param(
            "encoding",
            Q,
            false,
            "string",
            "Encoding; detected by default.",
        )
    },
    Param {
        values: &["auto", "yes", "no"],
        ..param(
            "header",
            Q,
            false,
            "string",
            "Whether the first row is a header.",
        )
    },
    param(
        "sheet",
        Q,
        false,
        "string",
        "For an .xlsx or .ods file, the sheet to read (default: the first); refused for CSV.",
    ),
    param(
        "map",
        Q,
        false,
        "array",
        "FIELD=SOURCE, repeatable: read FIELD from the column with header SOURCE, or from a template such as {username}@{domain}; over `mapping`.",
    ),
    param(
        "mapping",
        Q,
        false,
        "string",
        "The name of a saved column mapping (GET /api/mappings) to read the file with.",
    ),
];
const PREVIEW_PARAMS: [Param; 11] = [
    IMPORT_OPTIONS[0],
    IMPORT_OPTIONS[1],
    IMPORT_OPTIONS[2],
    IMPORT_OPTIONS[3],
    IMPORT_OPTIONS[4],
    IMPORT_OPTIONS[5],
    IMPORT_OPTIONS[6],
    Param {
        values: &["refuse", "reject"],
        ..param(
            "missing_columns",
            Q,
            false,
            "string",
            "A header without a required field: refuse the file (default), or reject every line naming the field, so that the preview still shows the file's columns and fields to map.",
        )
    },
    Param {
        range: Some((0, i64::MAX)),
        ..param(
            "results_offset",
            Q,
            false,
            "integer",
            "With results_limit: the outcomes listed in `results` start after this many lines (default 0).",
        )
    },
    Param {
        range: Some((0, imports::RESULTS_PAGE_MAX)),
        ..param(
            "results_limit",
            Q,
            false,
            "integer",
            "How many lines' outcomes `results` lists, from results_offset on: a page of a review table (0 to 1000, default 0).",
        )
    },
    Param {
        values: &[
            "all",
            "problems",
            "added",
            "updated",
            "unchanged",
            "discarded",
            "rejected",
            "duplicate",
        ],
        ..param(
            "results_outcome",
            Q,
            false,
            "string",
            "Which lines `results` lists (default all): `problems` are the lines not applied (discarded, rejected, duplicate); results_offset counts among those lines only.",
        )
    },
];
const COMMIT_PARAMS: [Param; 10] = [
    IMPORT_OPTIONS[0],
    IMPORT_OPTIONS[1],
    IMPORT_OPTIONS[2],
    IMPORT_OPTIONS[3],
    IMPORT_OPTIONS[4],
    IMPORT_OPTIONS[5],
    IMPORT_OPTIONS[6],
    param(
        "save_mapping",
        Q,
        false,
        "string",
        "Once committed, save the column mapping used (`mapping` and `map`) under this name.",
    ),
    param(
        "fingerprint",
        Q,
        false,
        "string",
        "The preview's fingerprint: if the import would now do anything else, nothing is written (409).",
    ),
    param(
        "strict",
        Q,
        false,
        "boolean",
        "Write nothing unless every line is valid and unique.",
    ),
];
const CSV_BODY: [(&str, &str); 4] = [
    ("text/csv", "CsvFile"),
    (crate::export::XLSX_CONTENT_TYPE, "CsvFile"),
    ("application/vnd.oasis.opendocument.spreadsheet", "CsvFile"),
    ("multipart/form-data", "Upload"),
];
const PAGING: [Param; 2] = [
    param(
        "after",
        Q,
        false,
        "string",
        "The `next` of the previous page.",
    ),
    Param {
        range: Some((1, PAGE_LIMIT_MAX)),
        ..param(
            "limit",
            Q,
            false,
            "integer",
            "Page size (default 50, at most 1000).",
        )
    },
];
const USER_EMAIL: Param = param("email", P, true, "string", "The user's email address.");
const PAGE_LIMIT_MAX: i64 = 1000;

/// Every route of the API.
pub fn api() -> Api {
    Api::new()
        .route(
            Operation {
                method: Method::POST,
                path: "/api/imports/preview",
                id: "previewImport",
                tag: "imports",
                summary: "Decide every line of a CSV, .xlsx or .ods file against the store, writing nothing",
                needs: READ,
                params: PREVIEW_PARAMS.to_vec(),
                body: CSV_BODY.to_vec(),
                replies: vec![
                    json(200, "What the import would do", "ImportPreview"),
                    error(400, "A parameter is invalid"),
                    error(413, "The file is over the upload limit"),
                    error(422, "The file cannot be read as CSV or as a spreadsheet"),
                ],
            },
            imports::preview,
        )
        .route(
            Operation {
                method: Method::POST,
                path: "/api/imports",
                id: "commitImport",
                tag: "imports",
                summary: "Import a CSV, .xlsx or .ods file in one transaction",
                needs: WRITE,
                params: COMMIT_PARAMS.to_vec(),
                body: CSV_BODY.to_vec(),
                replies: vec![
                    json(201, "The import was committed", "ImportCommitted"),
                    error(400, "A parameter is invalid"),
                    error(409, "The store changed since the preview, or its key was rotated meanwhile; nothing was written"),
                    error(413, "The file is over the upload limit"),
                    error(422, "The file cannot be read, or a strict import had rejected lines"),
                ],
            },
            imports::commit,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/imports",
                id: "listImports",
                tag: "imports",
                summary: "A page of the committed imports, newest first: who, when, the file, the counts",
                needs: READ,
                params: vec![PAGING[0], PAGING[1]],
                body: vec![],
                replies: vec![json(200, "A page of imports", "ImportPage")],
            },
            imports::list,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/imports/{id}",
                id: "getImport",
                tag: "imports",
                summary: "A committed import's summary and a page of the lines it did not apply",
                needs: READ,
                params: vec![
                    param("id", P, true, "string", "The import id."),
                    Param {
                        range: Some((0, i64::MAX)),
                        ..param("after", Q, false, "integer", "The `next` of the previous page: lines after this line number.")
                    },
                    Param {
                        range: Some((1, PAGE_LIMIT_MAX)),
                        ..param("limit", Q, false, "integer", "Page size (default 100, at most 1000).")
                    },
                    Param {
                        values: &["discarded", "rejected", "duplicate"],
                        ..param("outcome", Q, false, "string", "Only the lines of this outcome (default: every line not applied).")
                    },
                ],
                body: vec![],
                replies: vec![
                    json(200, "The import", "ImportRecord"),
                    error(400, "A parameter is invalid"),
                    error(404, "No such import"),
                ],
            },
            imports::get,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/imports/{id}/results.csv",
                id: "getImportResults",
                tag: "imports",
                summary: "A committed import's per-line results as CSV",
                needs: READ,
                params: vec![param("id", P, true, "string", "The import id.")],
                body: vec![],
                replies: vec![
                    Reply {
                        status: 200,
                        description: "line, user_email, account_address, outcome, message",
                        media: &["text/csv"],
                        schema: None,
                    },
                    error(404, "No such import"),
                ],
            },
            imports::results_csv,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/mappings",
                id: "listMappings",
                tag: "imports",
                summary: "The saved column mappings: name, account type, each field's source",
                needs: READ,
                params: vec![],
                body: vec![],
                replies: vec![json(200, "The saved mappings", "Mappings")],
            },
            imports::mappings,
        )
        .route(
            Operation {
                method: Method::POST,
                path: "/api/email-accounts/import/preview",
                id: "previewAccountRows",
                tag: "imports",
                summary: "Decide account rows given as JSON, writing nothing",
                needs: READ,
                params: vec![],
                body: vec![("application/json", "AccountRows")],
                replies: vec![
                    json(200, "Each row's outcome", "RowOutcomes"),
                    error(400, "The body is not the JSON expected"),
                    error(413, "The body is over the upload limit"),
                    error(422, "The body holds more than 10,000 rows (`too_many_rows`)"),
                ],
            },
            imports::preview_rows,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/users",
                id: "listUsers",
                tag: "directory",
                summary: "A page of users with their device and account counts",
                needs: READ,
                params: vec![
                    PAGING[0],
                    PAGING[1],
                    param("q", Q, false, "string", "Only users whose address or name contains this."),
                ],
                body: vec![],
                replies: vec![json(200, "A page of users", "UserPage")],
            },
            directory::list_users,
        )
        .route(
            Operation {
                method: Method::POST,
                path: "/api/users",
                id: "addUser",
                tag: "directory",
                summary: "Add a user, or update their display name",
                needs: WRITE,
                params: vec![],
                body: vec![("application/json", "NewUser")],
                replies: vec![
                    json(201, "The user as stored", "UserChange"),
                    error(422, "The user is invalid"),
                ],
            },
            directory::add_user,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/users/{email}",
                id: "getUser",
                tag: "directory",
                summary: "A user with their accounts (no passwords) and devices",
                needs: READ,
                params: vec![USER_EMAIL],
                body: vec![],
                replies: vec![json(200, "The user", "UserDetail"), error(404, "No such user")],
            },
            directory::get_user,
        )
        .route(
            Operation {
                method: Method::DELETE,
                path: "/api/users/{email}",
                id: "removeUser",
                tag: "directory",
                summary: "Remove a user with their accounts and devices",
                needs: WRITE,
                params: vec![USER_EMAIL],
                body: vec![],
                replies: vec![
                    REMOVED,
                    error(404, "No such user"),
                ],
            },
            directory::remove_user,
        )
        .route(
            Operation {
                method: Method::DELETE,
                path: "/api/users/{email}/accounts/{type}/{address}",
                id: "removeAccount",
                tag: "directory",
                summary: "Remove one mail account of a user; push removes or re-installs the profile on their devices",
                needs: WRITE,
                params: vec![
                    USER_EMAIL,
                    Param {
                        values: &["email", "exchange"],
                        ..param("type", P, true, "string", "The account's type.")
                    },
                    param("address", P, true, "string", "The account's email address."),
                ],
                body: vec![],
                replies: vec![
                    json(200, "The account removed and what push queued", "AccountRemoved"),
                    error(400, "Unknown account type"),
                    error(404, "The user has no such account"),
                ],
            },
            directory::delete_account,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/devices",
                id: "listDevices",
                tag: "directory",
                summary: "A page of enrolled devices",
                needs: READ,
                params: PAGING.to_vec(),
                body: vec![],
                replies: vec![json(200, "A page of devices", "DevicePage")],
            },
            directory::list_devices,
        )
        .route(
            Operation {
                method: Method::POST,
                path: "/api/devices",
                id: "addDevice",
                tag: "directory",
                summary: "Add a device to a user, or update it",
                needs: WRITE,
                params: vec![],
                body: vec![("application/json", "NewDevice")],
                replies: vec![
                    json(201, "The device as stored", "DeviceChange"),
                    error(422, "The device is invalid or its user unknown"),
                ],
            },
            directory::add_device,
        )
        .route(
            Operation {
                method: Method::DELETE,
                path: "/api/devices/{device_id}",
                id: "removeDevice",
                tag: "directory",
                summary: "Remove a device",
                needs: WRITE,
                params: vec![param("device_id", P, true, "string", "The MDM's device id.")],
                body: vec![],
                replies: vec![
                    REMOVED,
                    error(404, "No such device"),
                ],
            },
            directory::remove_device,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/users/{email}/profile",
                id: "getUserProfile",
                tag: "profiles",
                summary: "The user's rendered mail profile for a platform",
                needs: Needs {
                    scope: Scope::Secrets,
                    redacted_by: Some("redact"),
                },
                params: vec![
                    USER_EMAIL,
                    Param {
                        values: &["ios", "ipados", "macos", "windows", "android"],
                        ..param("platform", Q, true, "string", "The device platform.")
                    },
                    param("redact", Q, false, "boolean", "Replace passwords with asterisks (a preview; never signed). A redacted profile needs only the read scope; with passwords it needs secrets."),
                ],
                body: vec![],
                replies: vec![
                    Reply {
                        status: 200,
                        description: "The profile: application/x-apple-aspen-config (Apple), SyncML XML (Windows) or JSON (Android)",
                        media: &[
                            crate::profile::apple::CONTENT_TYPE,
                            crate::profile::windows::CONTENT_TYPE_FRAGMENT,
                            crate::profile::windows::CONTENT_TYPE_MESSAGE,
                            crate::profile::android::CONTENT_TYPE,
                        ],
                        schema: None,
                    },
                    error(404, "No such user"),
                    error(422, "Nothing to render for that platform"),
                ],
            },
            profile::get,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/export",
                id: "export",
                tag: "export",
                summary: "Accounts as CSV in the import format (passwords blank), or the device mappings report",
                needs: READ,
                params: vec![
                    Param {
                        values: &["email", "exchange", "mappings"],
                        ..param("type", Q, true, "string", "Email or Exchange accounts, or each device's expected profiles.")
                    },
                    Param {
                        values: &["csv", "xlsx"],
                        ..param("format", Q, false, "string", "File format (default csv); xlsx is a workbook whose cells are all text.")
                    },
                    Param {
                        values: &["comma", "semicolon", "tab"],
                        ..param("delimiter", Q, false, "string", "Field delimiter (default comma).")
                    },
                    Param {
                        values: &["utf-8", "utf-8-bom", "utf-16"],
                        ..param("encoding", Q, false, "string", "Text encoding (default utf-8).")
                    },
                ],
                body: vec![],
                replies: vec![
                    Reply {
                        status: 200,
                        description: "The CSV file, streamed, or the .xlsx workbook",
                        media: &["text/csv", crate::export::XLSX_CONTENT_TYPE],
                        schema: None,
                    },
                    error(400, "A parameter is invalid"),
                ],
            },
            export::get,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/push/jobs",
                id: "pushJobs",
                tag: "push",
                summary: "Push jobs per state, and a page of devices with theirs",
                needs: READ,
                params: vec![
                    PAGING[0],
                    PAGING[1],
                    param(
                        "batch",
                        Q,
                        false,
                        "string",
                        "Only the jobs one change queued: the `batch` (a UUID) of its `push` answer.",
                    ),
                ],
                body: vec![],
                replies: vec![json(200, "The push queue", "PushStatus")],
            },
            push::jobs,
        )
        .route(
            Operation {
                method: Method::POST,
                path: "/api/push/retry",
                id: "retryPush",
                tag: "push",
                summary: "Put every failed push job back in the queue",
                needs: WRITE,
                params: vec![],
                body: vec![],
                replies: vec![json(200, "How many jobs were queued again", "PushRetried")],
            },
            push::retry,
        )
        .route(
            Operation {
                method: Method::GET,
                path: "/api/openapi.json",
                id: "openapi",
                tag: "meta",
                summary: "This document",
                needs: READ,
                params: vec![],
                body: vec![],
                replies: vec![Reply {
                    status: 200,
                    description: "The OpenAPI 3.1 document",
                    media: &["application/json"],
                    schema: None,
                }],
            },
            openapi_json,
        )
}

/// The served OpenAPI document.
#[derive(Clone)]
struct Document(Arc<serde_json::Value>);

async fn openapi_json(
    Extension(Document(document)): Extension<Document>,
) -> Json<serde_json::Value> {
    Json((*document).clone())
}

/// The `/api` routes, behind token or session authentication.
pub fn router(state: AppState) -> Router<AppState> {
    let api = api();
    let document = Document(Arc::new(openapi::document(api.operations())));
    api.router
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            super::session::require_api_auth,
        ))
        .layer(Extension(document))
        // Bodies are read under the configured limit by `body`, which answers 413 itself.
        .layer(DefaultBodyLimit::disable())
}

/// A user's profile for `platform` as text with passwords redacted, or why there is none:
/// the wizard's profile preview.
pub async fn profile_preview(
    state: &AppState,
    email: &str,
    platform: crate::model::Platform,
) -> Result<String, String> {
    profile::render(state, email, platform, true)
        .await
        .map(|rendered| String::from_utf8_lossy(&rendered.body).into_owned())
        .map_err(|e| e.message)
}
