//! The `column_mappings` table: saved column mappings by name, each change audited.

use super::{Store, StoreError, now_ms, on_pool, on_tx};

/// A saved mapping as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SavedMapping {
    /// Its name.
    pub name: String,
    /// The account type it is for.
    pub kind: String,
    /// Field → source, a JSON object.
    pub fields: String,
    /// Who saved it.
    pub created_by: String,
    /// When, unix milliseconds.
    pub created_at: i64,
}

const COLUMNS: &str = "SELECT name, kind, fields, created_by, created_at FROM column_mappings";

impl Store {
    /// Every saved mapping, by name.
    pub async fn mappings(&self) -> Result<Vec<SavedMapping>, StoreError> {
        let sql = format!("{COLUMNS} ORDER BY name");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await
        })?)
    }

    /// The saved mapping called `name`.
    pub async fn mapping(&self, name: &str) -> Result<Option<SavedMapping>, StoreError> {
        let sql = format!("{COLUMNS} WHERE name = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(name).fetch_optional(pool).await
        })?)
    }

    /// Saves a mapping as `name`, replacing one of that name, and `actor` doing so in the
    /// audit log.
    pub async fn save_mapping(
        &self,
        name: &str,
        kind: &str,
        fields: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO column_mappings (name, kind, fields, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
             fields = excluded.fields, created_by = excluded.created_by, created_at = excluded.created_at";
        let mut tx = self.begin().await?;
        on_tx!(tx, conn => {
            sqlx::query(SQL)
                .bind(name)
                .bind(kind)
                .bind(fields)
                .bind(actor)
                .bind(now_ms())
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        let details: serde_json::Value =
            serde_json::from_str(fields).unwrap_or(serde_json::Value::Null);
        tx.audit(
            actor,
            "mapping.save",
            name,
            &serde_json::json!({ "type": kind, "fields": details }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the saved mapping called `name`, and `actor` doing so in the audit log; false
    /// when there is none.
    pub async fn remove_mapping(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM column_mappings WHERE name = $1";
        let mut tx = self.begin().await?;
        let removed = on_tx!(tx, conn => {
            sqlx::query(SQL).bind(name).execute(conn).await.map(|r| r.rows_affected())
        })?;
        if removed > 0 {
            tx.audit(actor, "mapping.remove", name, &serde_json::json!({}))
                .await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }
}
