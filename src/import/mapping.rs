//! Column mappings: for a file whose headers are not ours, which column (or template over
//! columns) each field of an account type is read from, given as `FIELD=SOURCE` on the
//! command line, as API parameters or in the wizard, and saved under a name for next time.

use serde::Serialize;

use super::schema;
use crate::csv::FieldSource;
use crate::model::AccountKind;
use crate::store::{SavedMapping, Store, StoreError};

/// For some fields of an account type, the source each is read from, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    fields: Vec<(&'static str, String)>,
}

/// Why a mapping cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// Not of the form `FIELD=SOURCE`.
    #[error(
        "{entry:?}: expected FIELD=SOURCE, SOURCE a column's header or a template such as {{username}}@{{domain}}"
    )]
    Malformed {
        /// What was given.
        entry: String,
    },
    /// A field the account type does not have.
    #[error("{field:?} is not a field of {kind} accounts (they are: {fields})")]
    UnknownField {
        /// The name given.
        field: String,
        /// The account type.
        kind: AccountKind,
        /// The fields it has.
        fields: String,
    },
    /// A source that is not a header or a template.
    #[error("{field}={source_text}: {reason}")]
    Source {
        /// The field.
        field: &'static str,
        /// The source as given.
        source_text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No saved mapping has the name.
    #[error("there is no saved mapping called {name:?} (`mdm-mail mappings list` lists them)")]
    NotFound {
        /// The name given.
        name: String,
    },
    /// A saved mapping of the other account type.
    #[error("the saved mapping {name:?} is for {saved} accounts, not {kind}")]
    OtherKind {
        /// Its name.
        name: String,
        /// The type it was saved for.
        saved: String,
        /// The type being imported.
        kind: AccountKind,
    },
    /// A saved mapping whose stored fields do not read back.
    #[error("the saved mapping {name:?} is damaged: {reason}")]
    Damaged {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Mapping {
    /// Whether no field is mapped.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The mapped fields and their sources as written, in the account type's field order.
    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.fields
    }

    /// Maps `field` to `source` (replacing an earlier source for it).
    pub fn set(
        &mut self,
        kind: AccountKind,
        field: &str,
        source: &str,
    ) -> Result<(), MappingError> {
        let columns = schema::columns(kind);
        let Some(column) = columns.iter().find(|c| c.name == field.trim()) else {
            return Err(MappingError::UnknownField {
                field: field.to_owned(),
                kind,
                fields: columns
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        FieldSource::parse(source).map_err(|reason| MappingError::Source {
            field: column.name,
            source_text: source.to_owned(),
            reason,
        })?;
        self.fields.retain(|(f, _)| *f != column.name);
        self.fields.push((column.name, source.trim().to_owned()));
        let order = |f: &str| columns.iter().position(|c| c.name == f);
        self.fields.sort_by_key(|(f, _)| order(f));
        Ok(())
    }

    /// Adds one `FIELD=SOURCE` entry.
    pub fn add(&mut self, kind: AccountKind, entry: &str) -> Result<(), MappingError> {
        let (field, source) = entry
            .split_once('=')
            .ok_or_else(|| MappingError::Malformed {
                entry: entry.to_owned(),
            })?;
        self.set(kind, field, source)
    }

    /// The sources, parsed, by field position, for reading a header.
    pub fn specs(&self, kind: AccountKind) -> Vec<(usize, String, FieldSource)> {
        let columns = schema::columns(kind);
        self.fields
            .iter()
            .filter_map(|(field, source)| {
                let index = columns.iter().position(|c| c.name == *field)?;
                let parsed = FieldSource::parse(source).ok()?;
                Some((index, source.clone(), parsed))
            })
            .collect()
    }

    /// The mapping as stored: a JSON object, field → source.
    pub fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .fields
            .iter()
            .map(|(f, s)| ((*f).to_owned(), s.clone().into()))
            .collect();
        serde_json::Value::Object(object).to_string()
    }

    /// Reads a stored mapping back.
    fn from_saved(kind: AccountKind, saved: &SavedMapping) -> Result<Mapping, MappingError> {
        if saved.kind != kind.as_str() {
            return Err(MappingError::OtherKind {
                name: saved.name.clone(),
                saved: saved.kind.clone(),
                kind,
            });
        }
        let damaged = |reason: String| MappingError::Damaged {
            name: saved.name.clone(),
            reason,
        };
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&saved.fields).map_err(|e| damaged(e.to_string()))?;
        let mut mapping = Mapping::default();
        for (field, source) in object {
            let source = source
                .as_str()
                .ok_or_else(|| damaged(format!("{field} is not text")))?;
            mapping.set(kind, &field, source)?;
        }
        Ok(mapping)
    }
}

/// A saved mapping as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// The account type it is for.
    #[serde(rename = "type")]
    pub kind: String,
    /// Field → source.
    pub fields: serde_json::Value,
    /// Who saved it (`example` for the ones shipped).
    pub created_by: String,
    /// When, unix milliseconds.
    pub created_at: i64,
}

/// Every saved mapping, by name.
pub async fn list(store: &Store) -> Result<Vec<Listed>, MappingError> {
    Ok(store
        .mappings()
        .await?
        .into_iter()
        .map(|m| Listed {
            fields: serde_json::from_str(&m.fields).unwrap_or(serde_json::Value::Null),
            name: m.name,
            kind: m.kind,
            created_by: m.created_by,
            created_at: m.created_at,
        })
        .collect())
}

/// The mapping an import uses: the saved one called `saved` (if any), with each
/// `FIELD=SOURCE` of `entries` on top.
pub async fn resolve(
    store: &Store,
    kind: AccountKind,
    saved: Option<&str>,
    entries: &[String],
) -> Result<Mapping, MappingError> {
    let mut mapping = match saved {
        None => Mapping::default(),
        Some(name) => {
            let stored = store
                .mapping(name)
                .await?
                .ok_or_else(|| MappingError::NotFound {
                    name: name.to_owned(),
                })?;
            Mapping::from_saved(kind, &stored)?
        }
    };
    for entry in entries {
        mapping.add(kind, entry)?;
    }
    Ok(mapping)
}

/// Saves `mapping` for `kind` as `name` (replacing one of that name), recorded in the audit
/// log as done by `actor`.
pub async fn save(
    store: &Store,
    name: &str,
    kind: AccountKind,
    mapping: &Mapping,
    actor: &str,
) -> Result<(), MappingError> {
    if name.trim().is_empty() {
        return Err(MappingError::Malformed {
            entry: name.to_owned(),
        });
    }
    store
        .save_mapping(name.trim(), kind.as_str(), &mapping.to_json(), actor)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_a_field_and_a_source() {
        let mut mapping = Mapping::default();
        mapping
            .add(AccountKind::Email, "incoming_password=password")
            .unwrap();
        mapping
            .add(AccountKind::Email, "user_email={username}@{domain}")
            .unwrap();
        assert_eq!(
            mapping.fields(),
            [
                ("user_email", "{username}@{domain}".to_owned()),
                ("incoming_password", "password".to_owned())
            ]
        );
        assert_eq!(
            mapping.to_json(),
            r#"{"incoming_password":"password","user_email":"{username}@{domain}"}"#
        );
        let err = mapping
            .add(AccountKind::Email, "exchange_domain=x")
            .unwrap_err();
        assert!(err.to_string().starts_with("\"exchange_domain\" is not a field of email accounts (they are: user_email, display_name,"), "{err}");
        assert!(matches!(
            mapping.add(AccountKind::Email, "user_email"),
            Err(MappingError::Malformed { .. })
        ));
        assert!(matches!(
            mapping.add(AccountKind::Email, "user_email={user"),
            Err(MappingError::Source { .. })
        ));
    }
}
