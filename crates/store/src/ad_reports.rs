//! Ad placements (a campaign's booked spots on episodes) and what reports and billing read from
//! them. A placement is delivered when its episode is `published`; the API sums rates into a
//! campaign report and an advertiser's monthly billing.

use sqlx::Row;

use crate::identity::new_id;
use crate::{now_ms, Db, StoreError};

/// One booked spot, with the episode and show it airs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub id: String,
    pub campaign_id: String,
    pub episode_id: String,
    /// `pre`, `mid` or `post`.
    pub position: String,
    pub rate_cents: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub episode_title: String,
    pub episode_status: String,
    pub air_date: Option<String>,
    pub show_id: String,
    pub show_name: String,
}

impl Placement {
    /// Whether the spot has aired: its episode is published.
    pub fn delivered(&self) -> bool {
        matches!(self.episode_status.as_str(), "published" | "aired")
    }
}

const PLACEMENT_SELECT: &str = "SELECT p.id, p.campaign_id, p.episode_id, p.position, \
     p.rate_cents, p.created_by, p.created_at, e.title AS episode_title, \
     e.status AS episode_status, e.air_date, e.show_id, s.name AS show_name \
     FROM ad_placements p JOIN ad_episodes e ON e.id = p.episode_id \
     JOIN ad_shows s ON s.id = e.show_id";

fn placement_row(r: &sqlx::any::AnyRow) -> Result<Placement, sqlx::Error> {
    Ok(Placement {
        id: r.try_get("id")?,
        campaign_id: r.try_get("campaign_id")?,
        episode_id: r.try_get("episode_id")?,
        position: r.try_get("position")?,
        rate_cents: r.try_get("rate_cents")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        episode_title: r.try_get("episode_title")?,
        episode_status: r.try_get("episode_status")?,
        air_date: r.try_get("air_date")?,
        show_id: r.try_get("show_id")?,
        show_name: r.try_get("show_name")?,
    })
}

impl Db {
    /// Books a spot; the same campaign, episode and position twice is a conflict.
    pub async fn create_placement(
        &self,
        organization_id: &str,
        campaign_id: &str,
        episode_id: &str,
        position: &str,
        rate_cents: i64,
        created_by: Option<&str>,
    ) -> Result<Placement, StoreError> {
        let id = new_id();
        let q = self.sql(
            "INSERT INTO ad_placements (id, organization_id, campaign_id, episode_id, position, \
             rate_cents, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        );
        self.execute(
            "ad_placement_create",
            sqlx::query(&q)
                .bind(&id)
                .bind(organization_id)
                .bind(campaign_id)
                .bind(episode_id)
                .bind(position)
                .bind(rate_cents)
                .bind(created_by)
                .bind(now_ms()),
        )
        .await
        .map_err(|e| e.unique_as_conflict("this spot of the episode is already booked"))?;
        self.placement(organization_id, campaign_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn placement(
        &self,
        organization_id: &str,
        campaign_id: &str,
        id: &str,
    ) -> Result<Option<Placement>, StoreError> {
        let q = self.sql(format!(
            "{PLACEMENT_SELECT} WHERE p.organization_id = ? AND p.campaign_id = ? AND p.id = ?"
        ));
        let row = self
            .timed(
                "ad_placement_get",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(campaign_id)
                    .bind(id)
                    .fetch_optional(self.pool()),
            )
            .await?;
        Ok(row.as_ref().map(placement_row).transpose()?)
    }

    /// The placements of some campaigns, by air date (unscheduled last), then show and position.
    pub async fn list_placements(
        &self,
        organization_id: &str,
        campaign_ids: &[String],
    ) -> Result<Vec<Placement>, StoreError> {
        if campaign_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; campaign_ids.len()].join(", ");
        let q = self.sql(format!(
            "{PLACEMENT_SELECT} WHERE p.organization_id = ? AND p.campaign_id IN ({marks}) \
             ORDER BY CASE WHEN e.air_date IS NULL THEN 1 ELSE 0 END, e.air_date, s.name, \
             p.position, p.id"
        ));
        let mut query = sqlx::query(&q).bind(organization_id);
        for c in campaign_ids {
            query = query.bind(c);
        }
        let rows = self
            .timed("ad_placement_list", query.fetch_all(self.pool()))
            .await?;
        Ok(rows.iter().map(placement_row).collect::<Result<_, _>>()?)
    }

    pub async fn delete_placement(
        &self,
        organization_id: &str,
        campaign_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let q = self.sql(
            "DELETE FROM ad_placements WHERE organization_id = ? AND campaign_id = ? AND id = ?",
        );
        let r = self
            .execute(
                "ad_placement_delete",
                sqlx::query(&q)
                    .bind(organization_id)
                    .bind(campaign_id)
                    .bind(id),
            )
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
