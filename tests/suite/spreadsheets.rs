//! Spreadsheet files in: `.xlsx` and `.ods` import through the real binary and the API
//! exactly as their CSV would, told apart by content, a sheet chosen by name, cells read as
//! the text they show, rows numbered as the spreadsheet numbers them; hostile workbooks are
//! refused with what was too large.

use std::io::{Cursor, Write};

use crate::support::{TestDb, fixture, stderr, stdout, store_test};

/// A cell of a test workbook: text, or a number as a spreadsheet stores one.
#[derive(Clone, Copy)]
pub enum Cell<'a> {
    /// Text.
    Text(&'a str),
    /// A number.
    Number(f64),
}

/// An `.xlsx` of named sheets of rows (`None` rows left blank), written by rust_xlsxwriter.
pub fn xlsx(sheets: &[(&str, &[Option<&[Cell<'_>]>])]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, rows) in sheets {
        let sheet = book.add_worksheet().set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().flat_map(|cells| cells.iter()).enumerate() {
                let (r, c) = (u32::try_from(r).unwrap(), u16::try_from(c).unwrap());
                match cell {
                    Cell::Text(text) => sheet.write_string(r, c, *text).unwrap(),
                    Cell::Number(n) => sheet.write_number(r, c, *n).unwrap(),
                };
            }
        }
    }
    book.save_to_buffer().unwrap()
}

/// An `.ods` of one sheet of text rows, as LibreOffice lays one out (the empty rest of the
/// sheet as one repeated row).
pub fn ods(name: &str, rows: &[&[&str]]) -> Vec<u8> {
    let mut content = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet>"#,
    );
    content.push_str(&format!(r#"<table:table table:name="{name}">"#));
    for row in rows {
        content.push_str("<table:table-row>");
        for cell in *row {
            if cell.is_empty() {
                content.push_str("<table:table-cell/>");
            } else {
                let escaped = cell.replace('&', "&amp;").replace('<', "&lt;");
                content.push_str(&format!(
                    r#"<table:table-cell office:value-type="string"><text:p>{escaped}</text:p></table:table-cell>"#
                ));
            }
        }
        content.push_str("</table:table-row>");
    }
    content.push_str(r#"<table:table-row table:number-rows-repeated="1048500"><table:table-cell table:number-columns-repeated="1024"/></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    zip.start_file("content.xml", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(content.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

const HEADER: [&str; 5] = [
    "user_email",
    "exchange_email",
    "exchange_username",
    "exchange_domain",
    "exchange_password",
];

fn with_users(db: &TestDb) {
    let output = db.run(&["users", "import", fixture("users.csv").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// The Exchange workbook of these tests: a header, alice with user name 007123 typed as
/// text and domain 42 typed as a number, a blank row, a line for nobody, a bad address.
fn exchange_book() -> Vec<u8> {
    use Cell::{Number, Text};
    let header: Vec<Cell<'_>> = HEADER.iter().map(|h| Text(h)).collect();
    xlsx(&[
        (
            "Accounts",
            &[
                Some(&header),
                Some(&[
                    Text("alice@example.com"),
                    Text("alice@corp.example.com"),
                    Text("007123"),
                    Number(42.0),
                    Text("pw"),
                ]),
                None,
                Some(&[
                    Text("nobody@example.com"),
                    Text("n@corp.example.com"),
                    Text("n"),
                ]),
                Some(&[
                    Text("bob@example.com"),
                    Text("bob.corp.example.com"),
                    Text("bob"),
                ]),
            ],
        ),
        (
            "Other",
            &[
                Some(&header),
                Some(&[
                    Text("bob@example.com"),
                    Text("bob@corp.example.com"),
                    Text("bob"),
                ]),
            ],
        ),
    ])
}

store_test! {
    async fn an_xlsx_imports_with_its_row_numbers_and_its_cells_as_shown(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("accounts.xlsx");
        std::fs::write(&file, exchange_book()).unwrap();

        let output = db.run(&["import", file.to_str().unwrap(), "--type", "exchange", "--json"]);

        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        assert_eq!(
            stdout(&output),
            concat!(
                r#"{"type":"exchange","rows":3,"added":1,"updated":0,"unchanged":0,"discarded":1,"#,
                r#""rejected":1,"duplicates":0,"format":"xlsx","sheet":"Accounts","header":true,"#,
                r#""dry_run":false,"lines":["#,
                r#"{"line":4,"outcome":"discarded","message":"no user with email nobody@example.com"},"#,
                r#"{"line":5,"outcome":"rejected","field":"exchange_email","#,
                r#""message":"\"bob.corp.example.com\" is not an email address (no @)"}],"#,
                r#""more_lines":0}"#,
                "\n"
            )
        );
        let export = db.run(&["export", "--type", "exchange"]);
        assert!(
            stdout(&export).contains("alice@example.com,alice@corp.example.com,007123,42,"),
            "the text 007123 keeps its zeros, the number 42 reads as shown: {}",
            stdout(&export)
        );
        let text = db.run(&["import", file.to_str().unwrap(), "--type", "exchange"]);
        assert!(stdout(&text).contains("(xlsx, sheet \"Accounts\", header)"), "{}", stdout(&text));
    }
}

store_test! {
    async fn another_sheet_is_chosen_by_name_and_a_missing_one_lists_the_sheets(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("accounts.xlsx");
        std::fs::write(&file, exchange_book()).unwrap();

        let other = db.run(&["import", file.to_str().unwrap(), "--type", "exchange", "--sheet", "Other", "--json"]);
        let summary: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
        assert_eq!((summary["sheet"].as_str(), summary["added"].as_u64()), (Some("Other"), Some(1)), "{summary}");

        let missing = db.run(&["import", file.to_str().unwrap(), "--type", "exchange", "--sheet", "Sheet9"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(
            stderr(&missing).contains("accounts.xlsx: nothing was imported: the workbook has no sheet called \"Sheet9\" (its sheets: Accounts, Other)"),
            "{}",
            stderr(&missing)
        );
        let csv = db.dir.path().join("accounts.csv");
        std::fs::write(&csv, "alice@example.com,alice@corp.example.com,alice,,\n").unwrap();
        let not_a_sheet = db.run(&["import", csv.to_str().unwrap(), "--type", "exchange", "--sheet", "Other"]);
        assert_eq!(not_a_sheet.status.code(), Some(1));
        assert!(stderr(&not_a_sheet).contains("this is a CSV text file, which has no sheets"), "{}", stderr(&not_a_sheet));
    }
}

store_test! {
    async fn an_ods_imports_like_its_csv_and_standard_input_takes_either(db: TestDb) {
        with_users(&db);
        let rows: [&[&str]; 3] = [
            &HEADER,
            &["alice@example.com", "alice@corp.example.com", "alice", "CORP", ""],
            &["bob@example.com", "bob@corp.example.com", "bob", "", "pw"],
        ];
        let file = db.dir.path().join("accounts.ods");
        std::fs::write(&file, ods("Konten", &rows)).unwrap();
        let output = db.run(&["import", file.to_str().unwrap(), "--type", "exchange", "--dry-run", "--json"]);
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            (summary["format"].as_str(), summary["sheet"].as_str(), summary["added"].as_u64()),
            (Some("ods"), Some("Konten"), Some(2)),
            "{summary}"
        );

        let mut child = std::process::Command::new(crate::support::binary())
            .current_dir(db.dir.path())
            .env("MDM_MAIL_DATABASE_URL", &db.url)
            .env("MDM_MAIL_SECRET_KEY", crate::import::KEY)
            .args(["import", "-", "--type", "exchange", "--json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&ods("Konten", &rows)).unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["added"].as_u64(), Some(2), "{summary}");
    }
}

store_test! {
    async fn the_api_previews_and_commits_a_workbook_and_lists_its_sheets(db: TestDb) {
        let app = crate::api::App::start(&db).await;
        app.load_directory().await;
        let preview: serde_json::Value = app
            .call(reqwest::Method::POST, "/api/imports/preview?type=exchange&results_limit=10")
            .header("Content-Type", mdm_mail::export::XLSX_CONTENT_TYPE)
            .body(exchange_book())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(preview["sheets"], serde_json::json!(["Accounts", "Other"]), "{preview}");
        assert_eq!((preview["format"].as_str(), preview["sheet"].as_str()), (Some("xlsx"), Some("Accounts")));
        assert_eq!(preview["sample"][0]["cells"], serde_json::json!(["alice@example.com", "alice@corp.example.com", "007123", "42", "••••••••"]));
        assert_eq!(preview["sample"][0]["line"], 2);
        let lines: Vec<u64> = preview["results"].as_array().unwrap().iter().map(|l| l["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [2, 4, 5]);

        let fingerprint = preview["fingerprint"].as_str().unwrap();
        let committed = app
            .call(reqwest::Method::POST, &format!("/api/imports?type=exchange&fingerprint={fingerprint}"))
            .body(exchange_book())
            .send()
            .await
            .unwrap();
        assert_eq!(committed.status(), reqwest::StatusCode::CREATED, "the commit does what the preview said");

        let other: serde_json::Value = app
            .call(reqwest::Method::POST, "/api/imports/preview?type=exchange&sheet=Other")
            .body(exchange_book())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(other["sheet"].as_str(), Some("Other"), "{other}");
        let missing = app
            .call(reqwest::Method::POST, "/api/imports/preview?type=exchange&sheet=Nope")
            .body(exchange_book())
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn hostile_workbooks_are_refused_with_what_was_too_large() {
    let db = TestDb::sqlite().await;
    let bomb = {
        // A sheet that inflates to gigabytes of one run of text from a few MiB.
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, text) in [
            (
                "_rels/.rels",
                r#"<Relationships><Relationship Id="r1" Type="x/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<workbook><sheets><sheet name="S" r:id="r1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<Relationships><Relationship Id="r1" Type="x/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
        zip.write_all(b"<worksheet><sheetData><row><c t=\"inlineStr\"><is><t>")
            .unwrap();
        let block = vec![b'x'; 1024 * 1024];
        for _ in 0..64 {
            zip.write_all(&block).unwrap();
        }
        zip.finish().unwrap().into_inner()
    };
    let file = db.dir.path().join("bomb.xlsx");
    std::fs::write(&file, bomb).unwrap();
    let output = db.run(&["import", file.to_str().unwrap(), "--type", "email"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("a cell or tag of xl/worksheets/sheet1.xml (a run of text between two tags) is larger than 4194304 bytes"),
        "{}",
        stderr(&output)
    );

    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(
        "word/document.xml",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"<w:document/>").unwrap();
    let docx = db.dir.path().join("letter.xlsx");
    std::fs::write(&docx, zip.finish().unwrap().into_inner()).unwrap();
    let output = db.run(&["import", docx.to_str().unwrap(), "--type", "email"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("this is a Word document, not a spreadsheet this version reads"),
        "{}",
        stderr(&output)
    );
}
