//! The `devices` table.

use sqlx::QueryBuilder;

use super::{Store, StoreError, Tx, now_ms, on_pool, on_tx, push_list};
use crate::model::{Device, NewDevice, Platform};

/// A device as stored, keyed by the MDM's device id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredDevice {
    /// Store id.
    pub id: i64,
    /// Owner's store id.
    pub user_id: i64,
    /// The MDM's device id.
    pub device_id: String,
    /// Platform name as stored.
    pub platform: String,
    /// Device-channel enrollment id.
    pub enrollment_id: String,
    /// macOS user-channel enrollment id.
    pub user_channel_id: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct DeviceRow {
    id: i64,
    user_email: String,
    device_id: String,
    platform: String,
    enrollment_id: String,
    user_channel_id: Option<String>,
}

impl DeviceRow {
    pub(super) fn into_device(self) -> Result<Device, StoreError> {
        let platform: Platform = self
            .platform
            .parse()
            .map_err(|e| StoreError::Query(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Device {
            id: self.id,
            user_email: self.user_email,
            device_id: self.device_id,
            platform,
            enrollment_id: self.enrollment_id,
            user_channel_id: self.user_channel_id,
        })
    }
}

impl Tx {
    /// The stored devices among `device_ids` (at most [`super::BATCH`]).
    pub async fn devices_by_device_id(
        &mut self,
        device_ids: &[&str],
    ) -> Result<Vec<StoredDevice>, StoreError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_tx!(self, conn => {
            let mut q = QueryBuilder::new(
                "SELECT id, user_id, device_id, platform, enrollment_id, user_channel_id \
                 FROM devices WHERE device_id IN ",
            );
            push_list(&mut q, device_ids.iter().copied());
            q.build_query_as::<StoredDevice>().fetch_all(conn).await
        })?)
    }

    /// Inserts new devices and updates changed ones, each with its owner's store id (at most
    /// [`super::BATCH`], no two with the same device id).
    pub async fn upsert_devices(
        &mut self,
        devices: &[(i64, &NewDevice)],
    ) -> Result<(), StoreError> {
        if devices.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        on_tx!(self, conn => {
            let mut q = QueryBuilder::new(
                "INSERT INTO devices (user_id, device_id, platform, enrollment_id, \
                 user_channel_id, created_at, updated_at) ",
            );
            q.push_values(devices, |mut row, (user_id, device)| {
                row.push_bind(*user_id)
                    .push_bind(device.device_id.as_str())
                    .push_bind(device.platform.as_str())
                    .push_bind(device.enrollment_id.as_str())
                    .push_bind(device.user_channel_id.as_deref())
                    .push_bind(now)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id, \
                 platform = excluded.platform, enrollment_id = excluded.enrollment_id, \
                 user_channel_id = excluded.user_channel_id, updated_at = excluded.updated_at",
            );
            q.build().execute(conn).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

impl Store {
    /// The macOS devices that have no user channel, first few by id, and how many there are.
    pub async fn macs_without_user_channel(
        &self,
        limit: i64,
    ) -> Result<(Vec<String>, i64), StoreError> {
        const SOME: &str = "SELECT device_id FROM devices WHERE platform = 'macos' \
             AND (user_channel_id IS NULL OR user_channel_id = '') ORDER BY device_id LIMIT $1";
        const COUNT: &str = "SELECT COUNT(*) FROM devices WHERE platform = 'macos' \
             AND (user_channel_id IS NULL OR user_channel_id = '')";
        Ok(on_pool!(self, pool => {
            let some = sqlx::query_scalar(SOME).bind(limit).fetch_all(pool).await?;
            let count = sqlx::query_scalar(COUNT).fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((some, count))
        })?)
    }

    /// One page of devices in device-id order, starting after `after`.
    pub async fn list_devices(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Device>, StoreError> {
        const SQL: &str = "SELECT d.id, u.email AS user_email, d.device_id, d.platform, \
             d.enrollment_id, d.user_channel_id \
             FROM devices d JOIN users u ON u.id = d.user_id \
             WHERE d.device_id > $1 ORDER BY d.device_id LIMIT $2";
        let rows: Vec<DeviceRow> = on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(DeviceRow::into_device).collect()
    }
}
