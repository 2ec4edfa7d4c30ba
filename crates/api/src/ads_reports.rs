//! Ad placements, campaign reports and advertiser billing (seed 002: "Client: view campaigns,
//! view reports, billing access, limited analytics"; "Seller: view analytics").
//!
//! A campaign books spots on episodes (`/campaigns/{id}/placements`: an episode, a position
//! `pre`/`mid`/`post` and a rate). A spot is delivered once its episode is `published`. The
//! report of a campaign sums booked and delivered spots against the budget, per show and
//! episode; the billing of an advertiser lists the delivered spots per month as invoice lines.
//!
//! The row rules are those of campaigns (see `crate::ads`): whoever sees a campaign sees its
//! placements and report; changing placements needs the right to edit the campaign. Billing of
//! an advertiser covers the campaigns of that advertiser the caller sees (a client user: its own
//! advertiser only). An id the caller may not see answers 404.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lunora_store::{Campaign, CampaignFilter, ListOptions, Placement};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ads::{
    campaign_can, campaign_scope, campaign_topics, changed, load_campaign, load_client, one_of,
    to_value,
};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_placements, create_placement))
        .routes(routes!(delete_placement))
        .routes(routes!(campaign_report))
        .routes(routes!(client_billing))
        .routes(routes!(list_people))
        .routes(routes!(list_inventory))
}

const POSITIONS: &[&str] = &["pre", "mid", "post"];

#[derive(Debug, Serialize, ToSchema)]
pub struct PlacementView {
    pub id: String,
    pub campaign_id: String,
    pub episode_id: String,
    /// `pre`, `mid` or `post`.
    pub position: String,
    pub rate_cents: i64,
    /// The episode is published: the spot has aired and is billed.
    pub delivered: bool,
    pub episode_title: String,
    /// `draft`, `scheduled`, `recorded`, `published`.
    pub episode_status: String,
    pub air_date: Option<String>,
    pub show_id: String,
    pub show_name: String,
    pub created_by: Option<String>,
    pub created_at: String,
}

fn placement_view(p: Placement) -> PlacementView {
    PlacementView {
        delivered: p.delivered(),
        id: p.id,
        campaign_id: p.campaign_id,
        episode_id: p.episode_id,
        position: p.position,
        rate_cents: p.rate_cents,
        episode_title: p.episode_title,
        episode_status: p.episode_status,
        air_date: p.air_date,
        show_id: p.show_id,
        show_name: p.show_name,
        created_by: p.created_by,
        created_at: rfc3339(p.created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlacementList {
    pub items: Vec<PlacementView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementBody {
    /// An episode of the organization.
    pub episode_id: String,
    /// `pre`, `mid` or `post`.
    pub position: String,
    /// The price of the spot in cents.
    pub rate_cents: i64,
}

/// The spots a campaign booked, by air date.
#[utoipa::path(get, path = "/campaigns/{id}/placements", tag = "ads", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PlacementList), (status = 404, body = crate::Problem)))]
async fn list_placements(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PlacementList>> {
    let c = load_campaign(&state, &who, &id).await?;
    let items = state
        .db
        .list_placements(&who.organization_id, std::slice::from_ref(&c.id))
        .await?;
    Ok(axum::Json(PlacementList {
        items: items.into_iter().map(placement_view).collect(),
    }))
}

/// Book a spot on an episode (owner, admin, or a team member with `edit`). The same episode
/// and position twice answers 409.
#[utoipa::path(post, path = "/campaigns/{id}/placements", tag = "ads", params(("id" = String, Path)),
    request_body = PlacementBody, security(("bearer" = [])),
    responses((status = 201, body = PlacementView), (status = 400, body = crate::Problem),
        (status = 403, body = crate::Problem), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem)))]
async fn create_placement(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(b): Json<PlacementBody>,
) -> ApiResult<Response> {
    let c = load_campaign(&state, &who, &id).await?;
    if !campaign_can(&who, &c, false) {
        return Err(ApiError::forbidden(
            "you may view this campaign but not book its spots",
        ));
    }
    let position = one_of("position", &b.position, POSITIONS)?;
    if !(0..=1_000_000_000_000).contains(&b.rate_cents) {
        return Err(ApiError::invalid(
            "rate_cents",
            "rate_cents must be 0 or more",
        ));
    }
    if state
        .db
        .episode(&who.organization_id, &b.episode_id)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid(
            "episode_id",
            "episode_id names no episode of this organization",
        ));
    }
    let p = state
        .db
        .create_placement(
            &who.organization_id,
            &c.id,
            &b.episode_id,
            &position,
            b.rate_cents,
            Some(&who.user_id),
        )
        .await?;
    let view = placement_view(p);
    changed(
        &state,
        &who,
        "campaign",
        &c.id,
        "placement_added",
        None,
        to_value(&view),
        &campaign_topics(&c),
    )
    .await;
    let location = format!("/api/v1/campaigns/{}/placements", c.id);
    let mut res = (StatusCode::CREATED, axum::Json(view)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        res.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(res)
}

/// Cancel a booked spot (owner, admin, or a team member with `edit`).
#[utoipa::path(delete, path = "/campaigns/{id}/placements/{placement_id}", tag = "ads",
    params(("id" = String, Path), ("placement_id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn delete_placement(
    State(state): State<AppState>,
    who: Principal,
    Path((id, placement_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let c = load_campaign(&state, &who, &id).await?;
    let p = state
        .db
        .placement(&who.organization_id, &c.id, &placement_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such placement"))?;
    if !campaign_can(&who, &c, false) {
        return Err(ApiError::forbidden(
            "you may view this campaign but not cancel its spots",
        ));
    }
    state
        .db
        .delete_placement(&who.organization_id, &c.id, &placement_id)
        .await?;
    changed(
        &state,
        &who,
        "campaign",
        &c.id,
        "placement_removed",
        to_value(&placement_view(p)),
        None,
        &campaign_topics(&c),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Totals {
    pub booked_spots: i64,
    pub booked_cents: i64,
    pub delivered_spots: i64,
    pub delivered_cents: i64,
}

impl Totals {
    fn add(&mut self, p: &Placement) {
        self.booked_spots += 1;
        self.booked_cents += p.rate_cents;
        if p.delivered() {
            self.delivered_spots += 1;
            self.delivered_cents += p.rate_cents;
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EpisodeReportRow {
    pub show_id: String,
    pub show_name: String,
    pub episode_id: String,
    pub episode_title: String,
    pub episode_status: String,
    pub air_date: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShowReportRow {
    pub show_id: String,
    pub show_name: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignReport {
    pub campaign_id: String,
    pub name: String,
    pub client_id: String,
    pub status: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub budget_cents: i64,
    /// Spots booked (aired or not) and their value.
    pub booked_spots: i64,
    pub booked_cents: i64,
    /// Spots aired (episode published).
    pub delivered_spots: i64,
    /// What the aired spots cost: the spend so far.
    pub spend_cents: i64,
    /// Budget minus spend (negative when overspent).
    pub remaining_cents: i64,
    /// Budget minus everything booked: what is left to book.
    pub unbooked_cents: i64,
    /// Per show, by name.
    pub shows: Vec<ShowReportRow>,
    /// Per episode, by air date.
    pub episodes: Vec<EpisodeReportRow>,
}

fn report(c: &Campaign, placements: &[Placement]) -> CampaignReport {
    let mut all = Totals::default();
    let mut shows: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut episodes: Vec<EpisodeReportRow> = Vec::new();
    for p in placements {
        all.add(p);
        shows
            .entry((p.show_name.clone(), p.show_id.clone()))
            .or_default()
            .add(p);
        match episodes.iter_mut().find(|e| e.episode_id == p.episode_id) {
            Some(e) => e.totals.add(p),
            None => {
                let mut totals = Totals::default();
                totals.add(p);
                episodes.push(EpisodeReportRow {
                    show_id: p.show_id.clone(),
                    show_name: p.show_name.clone(),
                    episode_id: p.episode_id.clone(),
                    episode_title: p.episode_title.clone(),
                    episode_status: p.episode_status.clone(),
                    air_date: p.air_date.clone(),
                    totals,
                });
            }
        }
    }
    CampaignReport {
        campaign_id: c.id.clone(),
        name: c.name.clone(),
        client_id: c.client_id.clone(),
        status: c.status.clone(),
        start_date: c.start_date.clone(),
        end_date: c.end_date.clone(),
        budget_cents: c.budget_cents,
        booked_spots: all.booked_spots,
        booked_cents: all.booked_cents,
        delivered_spots: all.delivered_spots,
        spend_cents: all.delivered_cents,
        remaining_cents: c.budget_cents - all.delivered_cents,
        unbooked_cents: c.budget_cents - all.booked_cents,
        shows: shows
            .into_iter()
            .map(|((show_name, show_id), totals)| ShowReportRow {
                show_id,
                show_name,
                totals,
            })
            .collect(),
        episodes,
    }
}

/// The report of a campaign: budget, booked, delivered, spend and remaining, per show and
/// episode. Whoever sees the campaign sees its report.
#[utoipa::path(get, path = "/campaigns/{id}/report", tag = "ads", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CampaignReport), (status = 404, body = crate::Problem)))]
async fn campaign_report(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CampaignReport>> {
    let c = load_campaign(&state, &who, &id).await?;
    let placements = state
        .db
        .list_placements(&who.organization_id, std::slice::from_ref(&c.id))
        .await?;
    Ok(axum::Json(report(&c, &placements)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceLine {
    pub campaign_id: String,
    pub campaign_name: String,
    pub placement_id: String,
    pub show_name: String,
    pub episode_id: String,
    pub episode_title: String,
    pub air_date: Option<String>,
    pub position: String,
    pub amount_cents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillingMonth {
    /// `YYYY-MM` of the air date; `undated` for published episodes without one.
    pub month: String,
    pub delivered_spots: i64,
    pub amount_cents: i64,
    pub lines: Vec<InvoiceLine>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientBilling {
    pub client_id: String,
    pub client_name: String,
    /// The campaigns counted (those of this advertiser the caller sees).
    pub campaign_ids: Vec<String>,
    /// Months with delivered spots, oldest first.
    pub months: Vec<BillingMonth>,
    pub total_cents: i64,
    /// Booked spots not yet aired, not billed.
    pub open_booked_cents: i64,
}

/// Billing of an advertiser: per month the delivered spots of its campaigns and their amount,
/// with invoice lines. A client user sees only its own advertiser's.
#[utoipa::path(get, path = "/clients/{id}/billing", tag = "ads", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ClientBilling), (status = 404, body = crate::Problem)))]
async fn client_billing(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ClientBilling>> {
    let client = load_client(&state, &who, &id).await?;
    let mut campaigns: Vec<Campaign> = Vec::new();
    let mut offset = 0;
    loop {
        let page = state
            .db
            .list_campaigns(
                &who.organization_id,
                campaign_scope(&who),
                &CampaignFilter {
                    client_id: Some(client.id.clone()),
                    ..Default::default()
                },
                &ListOptions {
                    offset,
                    limit: 200,
                    sort: Some("name".into()),
                },
            )
            .await?;
        campaigns.extend(page.items);
        match page.next_cursor.and_then(|c| c.parse().ok()) {
            Some(next) => offset = next,
            None => break,
        }
    }
    let ids: Vec<String> = campaigns.iter().map(|c| c.id.clone()).collect();
    let placements = state.db.list_placements(&who.organization_id, &ids).await?;
    let mut months: BTreeMap<String, BillingMonth> = BTreeMap::new();
    let mut open_booked_cents = 0;
    for p in placements {
        if !p.delivered() {
            open_booked_cents += p.rate_cents;
            continue;
        }
        let month = p
            .air_date
            .as_deref()
            .and_then(|d| d.get(..7))
            .unwrap_or("undated")
            .to_string();
        let m = months.entry(month.clone()).or_insert_with(|| BillingMonth {
            month,
            delivered_spots: 0,
            amount_cents: 0,
            lines: Vec::new(),
        });
        m.delivered_spots += 1;
        m.amount_cents += p.rate_cents;
        m.lines.push(InvoiceLine {
            campaign_name: campaigns
                .iter()
                .find(|c| c.id == p.campaign_id)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            campaign_id: p.campaign_id,
            placement_id: p.id,
            show_name: p.show_name,
            episode_id: p.episode_id,
            episode_title: p.episode_title,
            air_date: p.air_date,
            position: p.position,
            amount_cents: p.rate_cents,
        });
    }
    let months: Vec<BillingMonth> = months.into_values().collect();
    Ok(axum::Json(ClientBilling {
        client_id: client.id,
        client_name: client.name,
        campaign_ids: ids,
        total_cents: months.iter().map(|m| m.amount_cents).sum(),
        months,
        open_booked_cents,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `admin`, `seller`, `producer`, `talent` or `client`.
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeopleList {
    pub items: Vec<Person>,
}

/// The people of the advertising workspace, to name them on pages (presence, teams, talent) and
/// pick them in forms: the enabled users of role admin, seller, producer and talent. A client
/// user sees only itself.
#[utoipa::path(get, path = "/ads/people", tag = "ads", security(("bearer" = [])),
    responses((status = 200, body = PeopleList)))]
async fn list_people(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<PeopleList>> {
    let roles: &[&str] = if who.role == Role::Client {
        &[]
    } else {
        &["admin", "seller", "producer", "talent"]
    };
    let mut items = Vec::new();
    if let Some(me) = state
        .db
        .user_in_org(&who.organization_id, &who.user_id)
        .await?
    {
        if who.role == Role::Client {
            items.push(Person {
                id: me.id,
                email: me.email,
                display_name: me.display_name,
                role: me.role,
            });
        }
    }
    for role in roles {
        let mut cursor: Option<String> = None;
        loop {
            let page = state
                .db
                .list_users(
                    &who.organization_id,
                    &lunora_store::UserFilter {
                        role: Some((*role).to_string()),
                        disabled: Some(false),
                        ..Default::default()
                    },
                    cursor.as_deref(),
                    200,
                )
                .await?;
            items.extend(page.items.into_iter().map(|u| Person {
                id: u.id,
                email: u.email,
                display_name: u.display_name,
                role: u.role,
            }));
            match page.next_cursor {
                Some(c) if items.len() < 5000 => cursor = Some(c),
                _ => break,
            }
        }
    }
    Ok(axum::Json(PeopleList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryEpisode {
    pub id: String,
    pub title: String,
    pub show_id: String,
    pub show_name: String,
    pub air_date: Option<String>,
    /// `draft`, `scheduled`, `recorded`, `published`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Inventory {
    pub items: Vec<InventoryEpisode>,
}

/// What a seller can book spots on: the organization's episodes with their show, by air date
/// (at most 500). Sellers do not otherwise see episodes; this shows only what a booking needs.
#[utoipa::path(get, path = "/ads/inventory", tag = "ads", security(("bearer" = [])),
    responses((status = 200, body = Inventory)))]
async fn list_inventory(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<Inventory>> {
    let opts = ListOptions {
        offset: 0,
        limit: 200,
        sort: Some("name".into()),
    };
    let mut shows = std::collections::HashMap::new();
    let mut offset = 0;
    loop {
        let page = state
            .db
            .list_shows(
                &who.organization_id,
                lunora_store::Scope::All,
                &None,
                &ListOptions {
                    offset,
                    ..opts.clone()
                },
            )
            .await?;
        for s in page.items {
            shows.insert(s.id, s.name);
        }
        match page.next_cursor.and_then(|c| c.parse().ok()) {
            Some(next) if shows.len() < 2000 => offset = next,
            _ => break,
        }
    }
    let mut items = Vec::new();
    let mut offset = 0;
    loop {
        let page = state
            .db
            .list_episodes(
                &who.organization_id,
                lunora_store::Scope::All,
                &lunora_store::EpisodeFilter::default(),
                &ListOptions {
                    offset,
                    limit: 200,
                    sort: Some("air_date".into()),
                },
            )
            .await?;
        items.extend(page.items.into_iter().map(|e| InventoryEpisode {
            show_name: shows.get(&e.show_id).cloned().unwrap_or_default(),
            id: e.id,
            title: e.title,
            show_id: e.show_id,
            air_date: e.air_date,
            status: e.status,
        }));
        match page.next_cursor.and_then(|c| c.parse().ok()) {
            Some(next) if items.len() < 500 => offset = next,
            _ => break,
        }
    }
    Ok(axum::Json(Inventory { items }))
}
