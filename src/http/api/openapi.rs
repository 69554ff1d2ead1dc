//! The OpenAPI 3.1 document, built from the route declarations of [`super::api`].

use serde_json::{Map, Value, json};

use super::{In, Operation};
use crate::model::AccountKind;

/// The document describing `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    for op in operations {
        let entry = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method.as_str().to_ascii_lowercase()] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mdm-mail",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Imports email accounts onto MDM users and renders their mail profiles. \
                Every route takes `Authorization: Bearer <token>` (`mdm-mail token create NAME \
                [--scope read,write,secrets]`) and lists under `security` the scope it needs: \
                `read` lists and fetches, `write` changes, `secrets` receives passwords. \
                Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas(),
        },
    })
}

fn operation(op: &Operation) -> Value {
    let parameters: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            let mut schema = match p.kind {
                "array" => json!({ "type": "array", "items": { "type": "string" } }),
                kind => json!({ "type": kind }),
            };
            if !p.values.is_empty() {
                schema["enum"] = json!(p.values);
            }
            if let Some((minimum, maximum)) = p.range {
                schema["minimum"] = json!(minimum);
                schema["maximum"] = json!(maximum);
            }
            json!({
                "name": p.name,
                "in": if p.location == In::Path { "path" } else { "query" },
                "required": p.required,
                "description": p.description,
                "schema": schema,
            })
        })
        .collect();
    let mut responses = Map::new();
    for reply in &op.replies {
        let mut response = json!({ "description": reply.description });
        if !reply.media.is_empty() {
            let schema = match reply.schema {
                Some(name) => json!({ "$ref": format!("#/components/schemas/{name}") }),
                None => json!({}),
            };
            let content: Map<String, Value> = reply
                .media
                .iter()
                .map(|media| ((*media).to_owned(), json!({ "schema": schema })))
                .collect();
            response["content"] = Value::Object(content);
        }
        responses.insert(reply.status.to_string(), response);
    }
    let error =
        json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    // Any query parameter or body can be malformed: a bad number, an unknown choice, JSON
    // that does not parse.
    let takes_input = !op.body.is_empty() || op.params.iter().any(|p| p.location == In::Query);
    if takes_input && !responses.contains_key("400") {
        responses.insert(
            "400".to_owned(),
            json!({ "description": "A parameter or the body is malformed (`invalid_parameter`, `invalid_json`)", "content": error }),
        );
    }
    responses.insert(
        "401".to_owned(),
        json!({ "description": "No valid token", "content": error }),
    );
    responses.insert(
        "403".to_owned(),
        json!({
            "description": format!(
                "The token lacks the {} scope (`insufficient_scope`), or a session request lacks its CSRF token (`csrf`)",
                op.needs.scope
            ),
            "content": error,
        }),
    );
    if !op.body.is_empty()
        && op
            .body
            .iter()
            .all(|(media, _)| *media == "application/json")
    {
        responses.insert(
            "415".to_owned(),
            json!({
                "description": "The body was not sent as JSON (`unsupported_media_type`)",
                "content": error,
            }),
        );
    }
    responses.insert(
        "503".to_owned(),
        json!({
            "description": "The server's secret key is missing or is not the one the store's passwords are sealed with (`secret_key`); `mdm-mail secrets status` shows what to fix",
            "content": error,
        }),
    );
    let mut value = json!({
        "operationId": op.id,
        "tags": [op.tag],
        "summary": op.summary,
        "parameters": parameters,
        "responses": responses,
        "security": [{ "bearer": [op.needs.scope] }],
    });
    if let Some(param) = op.needs.redacted_by {
        value["description"] = json!(format!(
            "Needs the {} scope; with `{param}=true` the answer holds no password and needs only read.",
            op.needs.scope
        ));
    }
    if !op.body.is_empty() {
        let content: Map<String, Value> = op
            .body
            .iter()
            .map(|(media, schema)| {
                (
                    (*media).to_owned(),
                    json!({ "schema": { "$ref": format!("#/components/schemas/{schema}") } }),
                )
            })
            .collect();
        value["requestBody"] = json!({ "required": true, "content": content });
    }
    value
}

fn schemas() -> Value {
    let counts = json!({
        "rows": { "type": "integer" }, "added": { "type": "integer" },
        "updated": { "type": "integer" }, "unchanged": { "type": "integer" },
        "discarded": { "type": "integer" }, "rejected": { "type": "integer" },
        "duplicates": { "type": "integer" },
    });
    let line = json!({
        "type": "object",
        "properties": {
            "line": { "type": "integer" },
            "outcome": { "type": "string", "enum": ["added", "updated", "unchanged", "discarded", "rejected", "duplicate"] },
            "field": { "type": ["string", "null"] },
            "message": { "type": "string" },
        },
    });
    // A review table's line: the values it names the line by, as written (empty when the
    // line did not split into the account type's columns).
    let mut result_line = line.clone();
    merge(
        &mut result_line["properties"],
        &json!({ "user_email": { "type": "string" }, "account_address": { "type": "string" } }),
    );
    let mut summary = json!({
        "type": "object",
        "properties": {
            "type": { "type": "string", "enum": ["email", "exchange"] },
            "encoding": { "type": "string", "description": "CSV files only" },
            "delimiter": { "type": "string", "description": "CSV files only" },
            "format": { "type": "string", "enum": ["xlsx", "ods"], "description": "Spreadsheet files only" },
            "sheet": { "type": "string", "description": "Spreadsheet files only: the sheet read" },
            "header": { "type": "boolean" },
            "dry_run": { "type": "boolean" },
            "lines": { "type": "array", "items": line, "maxItems": crate::import::LINES_KEPT,
                "description": "The first lines not applied; every line's outcome is in the results (results_limit, or the stored import's results.csv)" },
            "more_lines": { "type": "integer", "description": "Lines not applied beyond those listed" },
        },
    });
    merge(&mut summary["properties"], &counts);
    let mut preview = summary.clone();
    merge(
        &mut preview["properties"],
        &json!({
            "bom": { "type": "boolean" },
            "sheets": { "type": "array", "items": { "type": "string" }, "description": "Spreadsheet files only: every sheet of the workbook" },
            "fields": { "type": "array", "description": "Each field of the account type and where the file gives it", "items": { "type": "object", "properties": {
                "field": { "type": "string" }, "required": { "type": "boolean" },
                "source": { "type": ["string", "null"], "description": "The column's header, the template, or null when the file does not have it" },
                "mapped": { "type": "boolean", "description": "Mapped by the request (map, mapping), not found by its header" } } } },
            "source": { "type": "string" },
            "fingerprint": { "type": "string", "description": "Pass to POST /api/imports to import exactly what was previewed." },
            "file_sha256": { "type": "string" },
            "other_type": { "type": ["string", "null"], "enum": ["email", "exchange", null],
                "description": "The other account type, when most lines have its number of columns: the file is probably of that type" },
            "columns": { "type": "array", "items": { "type": "object", "properties": {
                "header": { "type": ["string", "null"] }, "column": { "type": ["string", "null"] } } } },
            "sample": { "type": "array", "items": { "type": "object", "properties": {
                "line": { "type": "integer" }, "cells": { "type": "array", "items": { "type": "string" } } } },
                "description": "The first records, passwords masked" },
            "results": { "type": "array", "items": result_line, "maxItems": super::imports::RESULTS_PAGE_MAX,
                "description": "With results_limit: that many outcomes of the lines results_outcome admits, from results_offset on" },
        }),
    );
    let push_queued = json!({ "type": "object", "description": "What push queued after the change (or why nothing)",
        "properties": {
            "installs": { "type": "integer", "description": "Devices given their profile by an install alone" },
            "removals": { "type": "integer", "description": "Devices whose profile is removed, nothing installed instead" },
            "replacements": { "type": "integer", "description": "Devices whose profile is removed and installed anew (a Windows device whose set of accounts changed, unchanged accounts included; a changed profile identifier)" },
            "batch": { "type": ["string", "null"], "format": "uuid", "description": "The jobs' batch, for GET /api/push/jobs?batch=…; null when nothing was queued" },
            "error": { "type": "string" } } });
    // A commit answers what its preview does (but no page of results), and its id.
    let mut committed = preview.clone();
    if let Some(properties) = committed["properties"].as_object_mut() {
        properties.remove("results");
    }
    merge(
        &mut committed["properties"],
        &json!({ "id": { "type": "string", "format": "uuid" }, "push": push_queued }),
    );
    let states = json!({ "type": "object", "properties": {
        "queued": { "type": "integer" }, "sending": { "type": "integer" }, "sent": { "type": "integer" },
        "acknowledged": { "type": "integer" }, "failed": { "type": "integer" },
        "overdue": { "type": "integer", "description": "Of the sent, those whose device's answer is overdue" } } });
    let overdue = json!({ "type": "object", "description": "A sent job whose device has not answered in time", "properties": {
        "device_id": { "type": "string" }, "platform": { "type": "string" },
        "kind": { "type": "string", "enum": ["install", "remove"] }, "identifier": { "type": "string" },
        "sent_at": { "type": "integer", "description": "unix ms: when the MDM first took the command" },
        "waiting_seconds": { "type": "integer", "description": "How long the device has been silent since" },
        "nudges": { "type": "integer", "description": "APNs pushes sent to wake the device for its current command" },
        "resent": { "type": "boolean", "description": "Sent again under a new command for want of an answer" } } });
    let mut device_jobs = states.clone();
    merge(
        &mut device_jobs["properties"],
        &json!({ "device_id": { "type": "string" }, "platform": { "type": "string" },
            "last_error": { "type": ["string", "null"] }, "status": { "type": ["string", "null"] } }),
    );
    let user = json!({ "type": "object", "properties": {
        "email": { "type": "string" }, "display_name": { "type": "string" },
        "devices": { "type": "integer" }, "accounts": { "type": "integer" } } });
    let device = json!({ "type": "object", "required": ["user_email", "device_id", "platform", "enrollment_id"], "properties": {
        "user_email": { "type": "string" }, "device_id": { "type": "string" },
        "platform": { "type": "string", "enum": ["ios", "ipados", "macos", "windows", "android"] },
        "enrollment_id": { "type": "string" }, "user_channel_id": { "type": ["string", "null"] } } });
    let mut new_device = device.clone();
    new_device["additionalProperties"] = json!(false);
    let row_columns: std::collections::BTreeSet<&str> = [AccountKind::Email, AccountKind::Exchange]
        .into_iter()
        .flat_map(|kind| crate::import::schema::columns(kind).iter().map(|c| c.name))
        .collect();
    json!({
        "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": {
            "code": { "type": "string" }, "message": { "type": "string" },
            "details": { "description": "More structure: the summary of an import not committed, or, for a file whose header names the other account type's columns, `other_type`" } } } } },
        "CsvFile": { "type": "string", "format": "binary" },
        "Upload": { "type": "object", "required": ["file"], "properties": { "file": { "type": "string", "format": "binary" } } },
        "ImportPreview": preview,
        "ImportCommitted": committed,
        "ImportRecord": { "type": "object", "properties": {
            "id": { "type": "string" }, "type": { "type": "string" }, "source": { "type": "string" },
            "actor": { "type": "string" }, "created_at": { "type": "integer", "description": "unix ms" },
            "counts": { "type": "object", "properties": counts }, "lines": { "type": "array", "items": result_line },
            "next": { "type": ["integer", "null"], "description": "Pass as `after` for the next page" } } },
        "ImportPage": { "type": "object", "properties": {
            "imports": { "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "string", "format": "uuid" }, "kind": { "type": "string", "enum": ["email", "exchange"] },
                "source": { "type": "string" }, "file_sha256": { "type": "string" }, "actor": { "type": "string" },
                "options": { "type": "string" }, "encoding": { "type": "string" }, "delimiter": { "type": "string" },
                "header": { "type": "boolean" }, "rows": { "type": "integer" }, "added": { "type": "integer" },
                "updated": { "type": "integer" }, "unchanged": { "type": "integer" }, "discarded": { "type": "integer" },
                "rejected": { "type": "integer" }, "duplicates": { "type": "integer" },
                "created_at": { "type": "integer", "description": "unix ms" } } } },
            "next": { "type": ["string", "null"], "format": "uuid", "description": "Pass as `after` for the next (older) page" } } },
        "AccountRows": { "type": "object", "required": ["type", "rows"], "properties": {
            "type": { "type": "string", "enum": ["email", "exchange"] },
            "rows": { "type": "array", "maxItems": super::imports::ROWS_MAX, "items": { "type": "object", "additionalProperties": { "type": ["string", "null"] }, "propertyNames": { "enum": row_columns },
                "description": "Cells by canonical column name (user_email, email_address, …)" } } } },
        "Mappings": { "type": "object", "properties": { "mappings": { "type": "array", "items": { "type": "object", "properties": {
            "name": { "type": "string" }, "type": { "type": "string", "enum": ["email", "exchange"] },
            "fields": { "type": "object", "additionalProperties": { "type": "string" } },
            "created_by": { "type": "string" }, "created_at": { "type": "integer", "description": "unix ms" } } } } } },
        "RowOutcomes": { "type": "object", "properties": {
            "counts": { "type": "object", "properties": counts },
            "rows": { "type": "array", "items": { "type": "object", "properties": {
                "row": { "type": "integer", "description": "0-based index in the request" },
                "outcome": { "type": "string" }, "field": { "type": ["string", "null"] }, "message": { "type": "string" } } } } } },
        "UserPage": { "type": "object", "properties": {
            "users": { "type": "array", "items": user }, "next": { "type": ["string", "null"] } } },
        "NewUser": { "type": "object", "required": ["email"], "additionalProperties": false, "properties": {
            "email": { "type": "string" }, "display_name": { "type": "string" } } },
        "UserChange": { "type": "object", "properties": {
            "email": { "type": "string" }, "added": { "type": "boolean" } } },
        "UserDetail": { "type": "object", "properties": {
            "email": { "type": "string" }, "display_name": { "type": "string" },
            "accounts": { "type": "array", "items": { "type": "object" } },
            "devices": { "type": "array", "items": device } } },
        "DevicePage": { "type": "object", "properties": {
            "devices": { "type": "array", "items": device }, "next": { "type": ["string", "null"] } } },
        "NewDevice": new_device,
        "DeviceChange": { "type": "object", "properties": {
            "device_id": { "type": "string" }, "added": { "type": "boolean" }, "push": push_queued } },
        "AccountRemoved": { "type": "object", "properties": {
            "user_email": { "type": "string" }, "type": { "type": "string", "enum": ["email", "exchange"] },
            "address": { "type": "string" }, "push": push_queued } },
        "PushStatus": { "type": "object", "properties": {
            "jobs": states, "done": { "type": "boolean", "description": "Nothing queued or being sent" },
            "worker": { "type": "boolean", "description": "Whether this server runs a push worker" },
            "devices": { "type": "array", "items": device_jobs },
            "overdue": { "type": "array", "items": overdue, "maxItems": crate::push::OVERDUE_LISTED,
                "description": "The sent jobs whose device's answer is overdue, the longest waiting first (jobs.overdue counts them all)" },
            "next": { "type": ["string", "null"] } } },
        "PushRetried": { "type": "object", "properties": { "requeued": { "type": "integer" } } },
    })
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (key, value) in from {
            into.insert(key.clone(), value.clone());
        }
    }
}
