//! The permission table: the single source of truth for what each role may do, and the route
//! table that names, for every `/api/v1` operation, the access it needs. The request guard
//! enforces the route table before any handler runs; `GET /api/v1/permissions` shows both.
//! A route without an entry here answers 403 `no_access_rule`, and a test fails.

use serde::Serialize;
use utoipa::ToSchema;

/// Roles of the three products: the camera platform (admin, operator, viewer, api_only), the
/// advertising workspace (seller, producer, talent, client), the viewer platform
/// (consumer_admin and the audience tiers free, premium, vip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
    ApiOnly,
    Seller,
    Producer,
    Talent,
    Client,
    ConsumerAdmin,
    Free,
    Premium,
    Vip,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::ApiOnly,
        Role::Seller,
        Role::Producer,
        Role::Talent,
        Role::Client,
        Role::ConsumerAdmin,
        Role::Free,
        Role::Premium,
        Role::Vip,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::ApiOnly => "api_only",
            Role::Seller => "seller",
            Role::Producer => "producer",
            Role::Talent => "talent",
            Role::Client => "client",
            Role::ConsumerAdmin => "consumer_admin",
            Role::Free => "free",
            Role::Premium => "premium",
            Role::Vip => "vip",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Audience tiers sign up themselves; every other role is staff and joins by invitation.
    pub fn is_audience(self) -> bool {
        matches!(self, Role::Free | Role::Premium | Role::Vip)
    }

    /// The realm (user pool, password policy) of accounts with this role.
    pub fn realm(self) -> &'static str {
        if self.is_audience() {
            "audience"
        } else {
            "staff"
        }
    }
}

/// What a caller may do. `*_all` variants reach every resource of the organization; without
/// them a role reaches only the resources it owns (seed 000 "Resource Policies").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See channels (own ones, or all with `channels_manage_all`).
    ChannelsRead,
    /// Create channels and change or delete own ones.
    ChannelsWrite,
    /// Read and change every channel of the organization.
    ChannelsManageAll,
    /// Reveal a stream key in clear (audited).
    SecretsReveal,
    /// Own profile, password, MFA and sessions.
    SelfManage,
    /// List, invite, change the role of, disable and enable the organization's users.
    UsersManage,
    /// Create and revoke own API tokens.
    ApiTokensManage,
    /// Read the organization's audit log.
    AuditRead,
    /// Read e-mail kept in the outbox when no SMTP server is configured.
    OutboxRead,
    /// Change the organization's policies (MFA, IP allow-list).
    OrganizationManage,
    /// Create, change, delete and import the organization's encoding presets (seed 000
    /// "Preset Management (Admin Only)").
    PresetsManage,
    /// Advertising workspace: see campaigns (all for admins; sellers their own and their
    /// teams'; client users their advertiser's).
    CampaignsRead,
    /// Create campaigns; change those one owns or has `edit` on; manage teams with `manage_team`.
    CampaignsWrite,
    /// See advertisers (row-filtered like campaigns).
    AdClientsRead,
    /// Create and change advertisers.
    AdClientsWrite,
    /// See shows (talent: those with an episode assigned to them).
    ShowsRead,
    /// Create, change and delete shows.
    ShowsWrite,
    /// See episodes (talent: those assigned to them).
    EpisodesRead,
    /// Schedule episodes and assign talent.
    EpisodesWrite,
    /// Talent availability: own (talent) or everyone's (producers, admins).
    AvailabilityManage,
    /// The ad activity log (admins: all; others: entities they see and their own actions).
    ActivitiesRead,
    /// Take, download, upload, delete and restore backups; set the backup schedule.
    BackupsManage,
    /// Viewer platform: edit the catalog metadata of channels (operators: their own).
    CatalogManage,
    /// Viewer admin: categories, audience accounts, subscriptions, viewing analytics.
    ViewersManage,
    /// Viewer platform: moderate live chat (delete messages, time users out, slow mode) and work
    /// the reports queue. A channel's owner moderates its own stream's chat without it.
    ChatModerate,
}

impl Permission {
    pub const ALL: [Permission; 25] = [
        Permission::ChannelsRead,
        Permission::ChannelsWrite,
        Permission::ChannelsManageAll,
        Permission::SecretsReveal,
        Permission::SelfManage,
        Permission::UsersManage,
        Permission::ApiTokensManage,
        Permission::AuditRead,
        Permission::OutboxRead,
        Permission::OrganizationManage,
        Permission::PresetsManage,
        Permission::CampaignsRead,
        Permission::CampaignsWrite,
        Permission::AdClientsRead,
        Permission::AdClientsWrite,
        Permission::ShowsRead,
        Permission::ShowsWrite,
        Permission::EpisodesRead,
        Permission::EpisodesWrite,
        Permission::AvailabilityManage,
        Permission::ActivitiesRead,
        Permission::BackupsManage,
        Permission::CatalogManage,
        Permission::ViewersManage,
        Permission::ChatModerate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ChannelsRead => "channels_read",
            Permission::ChannelsWrite => "channels_write",
            Permission::ChannelsManageAll => "channels_manage_all",
            Permission::SecretsReveal => "secrets_reveal",
            Permission::SelfManage => "self_manage",
            Permission::UsersManage => "users_manage",
            Permission::ApiTokensManage => "api_tokens_manage",
            Permission::AuditRead => "audit_read",
            Permission::OutboxRead => "outbox_read",
            Permission::OrganizationManage => "organization_manage",
            Permission::PresetsManage => "presets_manage",
            Permission::CampaignsRead => "campaigns_read",
            Permission::CampaignsWrite => "campaigns_write",
            Permission::AdClientsRead => "ad_clients_read",
            Permission::AdClientsWrite => "ad_clients_write",
            Permission::ShowsRead => "shows_read",
            Permission::ShowsWrite => "shows_write",
            Permission::EpisodesRead => "episodes_read",
            Permission::EpisodesWrite => "episodes_write",
            Permission::AvailabilityManage => "availability_manage",
            Permission::ActivitiesRead => "activities_read",
            Permission::BackupsManage => "backups_manage",
            Permission::CatalogManage => "catalog_manage",
            Permission::ViewersManage => "viewers_manage",
            Permission::ChatModerate => "chat_moderate",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The table itself.
pub fn granted(role: Role) -> &'static [Permission] {
    use Permission::*;
    match role {
        Role::Admin => &[
            ChannelsRead,
            ChannelsWrite,
            ChannelsManageAll,
            SecretsReveal,
            SelfManage,
            UsersManage,
            ApiTokensManage,
            AuditRead,
            OutboxRead,
            OrganizationManage,
            PresetsManage,
            CampaignsRead,
            CampaignsWrite,
            AdClientsRead,
            AdClientsWrite,
            ShowsRead,
            ShowsWrite,
            EpisodesRead,
            EpisodesWrite,
            AvailabilityManage,
            ActivitiesRead,
            BackupsManage,
            CatalogManage,
            ViewersManage,
            ChatModerate,
        ],
        Role::Operator => &[
            ChannelsRead,
            ChannelsWrite,
            SecretsReveal,
            SelfManage,
            ApiTokensManage,
            CatalogManage,
            ChatModerate,
        ],
        Role::Viewer => &[ChannelsRead, SelfManage],
        // Holds API tokens only: it cannot sign in with a password, so it has no own profile.
        Role::ApiOnly => &[ChannelsRead, ChannelsWrite],
        // The advertising workspace (seed 002); rows are filtered further by crate::ads.
        Role::Seller => &[
            SelfManage,
            CampaignsRead,
            CampaignsWrite,
            AdClientsRead,
            AdClientsWrite,
            ShowsRead,
            ActivitiesRead,
        ],
        Role::Producer => &[
            SelfManage,
            ShowsRead,
            ShowsWrite,
            EpisodesRead,
            EpisodesWrite,
            AvailabilityManage,
            ActivitiesRead,
        ],
        Role::Talent => &[
            SelfManage,
            ShowsRead,
            EpisodesRead,
            AvailabilityManage,
            ActivitiesRead,
        ],
        Role::Client => &[SelfManage, CampaignsRead, AdClientsRead, ActivitiesRead],
        Role::ConsumerAdmin => &[SelfManage, CatalogManage, ViewersManage, ChatModerate],
        Role::Free | Role::Premium | Role::Vip => &[SelfManage],
    }
}

pub fn allows(role: Role, permission: Permission) -> bool {
    granted(role).contains(&permission)
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", content = "permission", rename_all = "snake_case")]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in caller (session or API token).
    Authenticated,
    /// A caller whose role (and API token scope) grants the permission.
    Permission(Permission),
    /// A platform superadmin signed in with a session (not an API token).
    Superadmin,
}

/// How a route is rate-limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateClass {
    /// Not limited (health checks, the API description).
    None,
    /// Sign-in and e-mail link endpoints: a tight limit per source address.
    Auth,
    /// Everything else: per caller, by role.
    Default,
}

/// The rule of one operation.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct RouteRule {
    /// HTTP method in upper case.
    pub method: &'static str,
    /// Path as in the OpenAPI document, e.g. `/api/v1/channels/{id}`.
    pub path: &'static str,
    pub access: Access,
    /// Name recorded in the audit log, e.g. `channel.create`.
    pub action: &'static str,
    pub rate: RateClass,
    /// Allowed to a session that must enrol TOTP before anything else.
    pub during_mfa_enrolment: bool,
    /// State-changing calls are written to the audit log (false only for player telemetry:
    /// viewing-session start, heartbeats and end, a few per viewer and minute).
    pub audited: bool,
}

const fn rule(
    method: &'static str,
    path: &'static str,
    access: Access,
    action: &'static str,
) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
        action,
        rate: RateClass::Default,
        during_mfa_enrolment: false,
        audited: true,
    }
}

const fn auth_rule(method: &'static str, path: &'static str, action: &'static str) -> RouteRule {
    RouteRule {
        method,
        path,
        access: Access::Public,
        action,
        rate: RateClass::Auth,
        during_mfa_enrolment: false,
        audited: true,
    }
}

const fn enrolment(mut r: RouteRule) -> RouteRule {
    r.during_mfa_enrolment = true;
    r
}

const fn telemetry(mut r: RouteRule) -> RouteRule {
    r.audited = false;
    r
}

const fn unlimited(mut r: RouteRule) -> RouteRule {
    r.rate = RateClass::None;
    r
}

use Access::{Authenticated, Public, Superadmin};
use Permission as P;

const fn perm(p: Permission) -> Access {
    Access::Permission(p)
}

/// Every `/api/v1` operation with the access it needs.
pub const ROUTES: &[RouteRule] = &[
    // health and API description
    unlimited(rule("GET", "/api/v1/health/overall", Public, "health.read")),
    unlimited(rule("GET", "/api/v1/openapi.json", Public, "openapi.read")),
    unlimited(rule("GET", "/api/v1/docs", Public, "docs.read")),
    // sign-in and sessions
    auth_rule("POST", "/api/v1/auth/login", "auth.login"),
    rule("POST", "/api/v1/auth/refresh", Public, "auth.refresh"),
    enrolment(rule(
        "POST",
        "/api/v1/auth/logout",
        Authenticated,
        "auth.logout",
    )),
    enrolment(rule("GET", "/api/v1/auth/me", Authenticated, "auth.me")),
    rule(
        "GET",
        "/api/v1/auth/sessions",
        perm(P::SelfManage),
        "session.list",
    ),
    rule(
        "DELETE",
        "/api/v1/auth/sessions/{id}",
        perm(P::SelfManage),
        "session.revoke",
    ),
    rule(
        "GET",
        "/api/v1/permissions",
        Authenticated,
        "permissions.read",
    ),
    auth_rule("POST", "/api/v1/auth/signup", "auth.signup"),
    auth_rule("POST", "/api/v1/setup", "auth.setup"),
    auth_rule("POST", "/api/v1/auth/verify-email", "auth.verify_email"),
    auth_rule(
        "POST",
        "/api/v1/auth/password-reset/request",
        "auth.password_reset_request",
    ),
    auth_rule(
        "POST",
        "/api/v1/auth/password-reset/confirm",
        "auth.password_reset_confirm",
    ),
    // MFA
    enrolment(rule(
        "GET",
        "/api/v1/auth/mfa",
        perm(P::SelfManage),
        "mfa.read",
    )),
    enrolment(rule(
        "POST",
        "/api/v1/auth/mfa/totp/enrol",
        perm(P::SelfManage),
        "mfa.totp_enrol",
    )),
    enrolment(rule(
        "POST",
        "/api/v1/auth/mfa/totp/verify",
        perm(P::SelfManage),
        "mfa.totp_verify",
    )),
    rule(
        "POST",
        "/api/v1/auth/mfa/totp/disable",
        perm(P::SelfManage),
        "mfa.totp_disable",
    ),
    rule(
        "POST",
        "/api/v1/auth/mfa/recovery-codes",
        perm(P::SelfManage),
        "mfa.recovery_codes_renew",
    ),
    // users
    rule("GET", "/api/v1/users", perm(P::UsersManage), "user.list"),
    rule("GET", "/api/v1/users/me", Authenticated, "user.me"),
    rule(
        "PATCH",
        "/api/v1/users/me",
        perm(P::SelfManage),
        "user.update_self",
    ),
    rule(
        "POST",
        "/api/v1/users/me/password",
        perm(P::SelfManage),
        "user.password_change",
    ),
    rule(
        "GET",
        "/api/v1/users/{id}",
        perm(P::UsersManage),
        "user.read",
    ),
    rule(
        "PATCH",
        "/api/v1/users/{id}",
        perm(P::UsersManage),
        "user.update",
    ),
    rule(
        "DELETE",
        "/api/v1/users/{id}/mfa",
        perm(P::UsersManage),
        "user.mfa_reset",
    ),
    rule(
        "GET",
        "/api/v1/users/{id}/sessions",
        perm(P::UsersManage),
        "user.session_list",
    ),
    rule(
        "DELETE",
        "/api/v1/users/{id}/sessions/{session_id}",
        perm(P::UsersManage),
        "user.session_revoke",
    ),
    // invitations
    rule(
        "GET",
        "/api/v1/invitations",
        perm(P::UsersManage),
        "invitation.list",
    ),
    rule(
        "POST",
        "/api/v1/invitations",
        perm(P::UsersManage),
        "invitation.create",
    ),
    rule(
        "GET",
        "/api/v1/invitations/{id}",
        perm(P::UsersManage),
        "invitation.read",
    ),
    rule(
        "DELETE",
        "/api/v1/invitations/{id}",
        perm(P::UsersManage),
        "invitation.revoke",
    ),
    auth_rule("POST", "/api/v1/invitations/accept", "invitation.accept"),
    // API tokens
    rule(
        "GET",
        "/api/v1/api-tokens",
        perm(P::ApiTokensManage),
        "api_token.list",
    ),
    rule(
        "POST",
        "/api/v1/api-tokens",
        perm(P::ApiTokensManage),
        "api_token.create",
    ),
    rule(
        "GET",
        "/api/v1/api-tokens/{id}",
        perm(P::ApiTokensManage),
        "api_token.read",
    ),
    rule(
        "DELETE",
        "/api/v1/api-tokens/{id}",
        perm(P::ApiTokensManage),
        "api_token.revoke",
    ),
    // organizations
    rule(
        "GET",
        "/api/v1/organizations",
        Superadmin,
        "organization.list",
    ),
    rule(
        "POST",
        "/api/v1/organizations",
        Superadmin,
        "organization.create",
    ),
    rule(
        "GET",
        "/api/v1/organizations/current",
        Authenticated,
        "organization.read_current",
    ),
    rule(
        "PATCH",
        "/api/v1/organizations/current",
        perm(P::OrganizationManage),
        "organization.update_current",
    ),
    rule(
        "GET",
        "/api/v1/organizations/{id}",
        Superadmin,
        "organization.read",
    ),
    rule(
        "PATCH",
        "/api/v1/organizations/{id}",
        Superadmin,
        "organization.update",
    ),
    // audit log and outbox
    rule(
        "GET",
        "/api/v1/audit-logs",
        perm(P::AuditRead),
        "audit.list",
    ),
    rule(
        "GET",
        "/api/v1/audit-logs/{id}",
        perm(P::AuditRead),
        "audit.read",
    ),
    rule("GET", "/api/v1/outbox", perm(P::OutboxRead), "outbox.list"),
    // channels
    rule(
        "GET",
        "/api/v1/channels",
        perm(P::ChannelsRead),
        "channel.list",
    ),
    rule(
        "POST",
        "/api/v1/channels",
        perm(P::ChannelsWrite),
        "channel.create",
    ),
    rule(
        "GET",
        "/api/v1/channels/{id}",
        perm(P::ChannelsRead),
        "channel.read",
    ),
    rule(
        "PATCH",
        "/api/v1/channels/{id}",
        perm(P::ChannelsWrite),
        "channel.update",
    ),
    rule(
        "DELETE",
        "/api/v1/channels/{id}",
        perm(P::ChannelsWrite),
        "channel.delete",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/play-token",
        perm(P::ChannelsRead),
        "channel.play_token",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/inputs/{input_id}/reveal",
        perm(P::SecretsReveal),
        "secret.reveal",
    ),
    // component health in detail (organization-scoped)
    rule(
        "GET",
        "/api/v1/health/engine",
        perm(P::ChannelsRead),
        "health.engine",
    ),
    rule(
        "GET",
        "/api/v1/health/sources",
        perm(P::ChannelsRead),
        "health.sources",
    ),
    rule(
        "GET",
        "/api/v1/health/destinations",
        perm(P::ChannelsRead),
        "health.destinations",
    ),
    // cameras
    rule(
        "GET",
        "/api/v1/cameras",
        perm(P::ChannelsRead),
        "camera.list",
    ),
    rule(
        "POST",
        "/api/v1/cameras",
        perm(P::ChannelsWrite),
        "camera.create",
    ),
    rule(
        "GET",
        "/api/v1/cameras/{id}",
        perm(P::ChannelsRead),
        "camera.read",
    ),
    rule(
        "PATCH",
        "/api/v1/cameras/{id}",
        perm(P::ChannelsWrite),
        "camera.update",
    ),
    rule(
        "DELETE",
        "/api/v1/cameras/{id}",
        perm(P::ChannelsWrite),
        "camera.delete",
    ),
    rule(
        "GET",
        "/api/v1/cameras/{id}/status",
        perm(P::ChannelsRead),
        "camera.status",
    ),
    rule(
        "POST",
        "/api/v1/cameras/{id}/rotate-key",
        perm(P::ChannelsWrite),
        "camera.rotate_key",
    ),
    rule(
        "POST",
        "/api/v1/cameras/import",
        perm(P::ChannelsWrite),
        "camera.import",
    ),
    rule(
        "POST",
        "/api/v1/cameras/bulk",
        perm(P::ChannelsWrite),
        "camera.bulk",
    ),
    // alerts and webhooks
    rule("GET", "/api/v1/alerts", perm(P::ChannelsRead), "alert.list"),
    rule(
        "POST",
        "/api/v1/alerts/{id}/acknowledge",
        perm(P::ChannelsWrite),
        "alert.acknowledge",
    ),
    rule(
        "POST",
        "/api/v1/alerts/{id}/resolve",
        perm(P::ChannelsWrite),
        "alert.resolve",
    ),
    rule(
        "POST",
        "/api/v1/webhooks",
        perm(P::OrganizationManage),
        "webhook.create",
    ),
    rule(
        "DELETE",
        "/api/v1/webhooks/{id}",
        perm(P::OrganizationManage),
        "webhook.delete",
    ),
    // analytics
    rule(
        "GET",
        "/api/v1/analytics/dashboard",
        perm(P::ChannelsRead),
        "analytics.dashboard",
    ),
    rule(
        "GET",
        "/api/v1/analytics/system",
        perm(P::ChannelsRead),
        "analytics.system",
    ),
    rule(
        "GET",
        "/api/v1/analytics/cameras/{id}",
        perm(P::ChannelsRead),
        "analytics.camera",
    ),
    // real-time events and notifications
    unlimited(rule(
        "GET",
        "/api/v1/events",
        Authenticated,
        "events.subscribe",
    )),
    unlimited(rule(
        "GET",
        "/api/v1/events/asyncapi.json",
        Public,
        "events.schema",
    )),
    rule(
        "GET",
        "/api/v1/notifications",
        Authenticated,
        "notification.list",
    ),
    rule(
        "POST",
        "/api/v1/notifications/{id}/read",
        Authenticated,
        "notification.read",
    ),
    rule(
        "POST",
        "/api/v1/notifications/batch-read",
        Authenticated,
        "notification.batch_read",
    ),
    // viewer platform: live chat, likes, reports and the moderation queue
    unlimited(rule(
        "GET",
        "/api/v1/streams/{id}/chat/ws",
        Public,
        "chat.connect",
    )),
    rule(
        "GET",
        "/api/v1/streams/{id}/chat/messages",
        Public,
        "chat.history",
    ),
    rule(
        "DELETE",
        "/api/v1/streams/{id}/chat/messages/{message_id}",
        Authenticated,
        "chat.message_delete",
    ),
    rule(
        "POST",
        "/api/v1/streams/{id}/chat/timeouts",
        Authenticated,
        "chat.timeout",
    ),
    rule(
        "GET",
        "/api/v1/streams/{id}/chat/settings",
        Public,
        "chat.settings_read",
    ),
    rule(
        "PUT",
        "/api/v1/streams/{id}/chat/settings",
        Authenticated,
        "chat.settings_update",
    ),
    rule("GET", "/api/v1/streams/{id}/likes", Public, "like.read"),
    rule(
        "PUT",
        "/api/v1/streams/{id}/like",
        Authenticated,
        "like.set",
    ),
    rule(
        "DELETE",
        "/api/v1/streams/{id}/like",
        Authenticated,
        "like.unset",
    ),
    rule(
        "POST",
        "/api/v1/social/report",
        Authenticated,
        "report.create",
    ),
    rule(
        "GET",
        "/api/v1/moderation/reports",
        perm(P::ChatModerate),
        "report.list",
    ),
    rule(
        "POST",
        "/api/v1/moderation/reports/{id}/review",
        perm(P::ChatModerate),
        "report.review",
    ),
    rule(
        "POST",
        "/api/v1/moderation/reports/{id}/resolve",
        perm(P::ChatModerate),
        "report.resolve",
    ),
    rule(
        "GET",
        "/api/v1/moderation/actions",
        perm(P::ChatModerate),
        "moderation.list",
    ),
    // destinations and stream control
    rule(
        "GET",
        "/api/v1/destinations",
        perm(P::ChannelsRead),
        "destination.list",
    ),
    rule(
        "POST",
        "/api/v1/destinations",
        perm(P::ChannelsWrite),
        "destination.create",
    ),
    rule(
        "GET",
        "/api/v1/destinations/{id}",
        perm(P::ChannelsRead),
        "destination.read",
    ),
    rule(
        "PATCH",
        "/api/v1/destinations/{id}",
        perm(P::ChannelsWrite),
        "destination.update",
    ),
    rule(
        "DELETE",
        "/api/v1/destinations/{id}",
        perm(P::ChannelsWrite),
        "destination.delete",
    ),
    rule(
        "POST",
        "/api/v1/destinations/{id}/test",
        perm(P::ChannelsWrite),
        "destination.test",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/streaming/start",
        perm(P::ChannelsWrite),
        "streaming.start",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/streaming/stop",
        perm(P::ChannelsWrite),
        "streaming.stop",
    ),
    rule(
        "GET",
        "/api/v1/channels/{id}/streaming/status",
        perm(P::ChannelsRead),
        "streaming.status",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/streaming/destinations/{destination_id}/start",
        perm(P::ChannelsWrite),
        "streaming.destination_start",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/streaming/destinations/{destination_id}/stop",
        perm(P::ChannelsWrite),
        "streaming.destination_stop",
    ),
    rule(
        "GET",
        "/api/v1/streaming/sessions",
        perm(P::ChannelsRead),
        "streaming.session_list",
    ),
    rule(
        "GET",
        "/api/v1/streaming/sessions/{id}",
        perm(P::ChannelsRead),
        "streaming.session_read",
    ),
    // source redundancy (settings: administrators; switching: whoever runs the channel)
    rule(
        "GET",
        "/api/v1/channels/{id}/sources/config",
        perm(P::ChannelsRead),
        "sources.config_read",
    ),
    rule(
        "PUT",
        "/api/v1/channels/{id}/sources/config",
        perm(P::ChannelsManageAll),
        "sources.config_update",
    ),
    rule(
        "GET",
        "/api/v1/channels/{id}/sources/status",
        perm(P::ChannelsRead),
        "sources.status",
    ),
    rule(
        "POST",
        "/api/v1/channels/{id}/sources/switch",
        perm(P::ChannelsWrite),
        "sources.switch",
    ),
    // the HLS ladder (renditions besides the source)
    rule(
        "GET",
        "/api/v1/channels/{id}/hls",
        perm(P::ChannelsRead),
        "channel.hls_read",
    ),
    rule(
        "PUT",
        "/api/v1/channels/{id}/hls",
        perm(P::ChannelsWrite),
        "channel.hls_update",
    ),
    // recordings and thumbnails (live HLS at /hls is outside /api/v1: see crate::hls)
    rule(
        "GET",
        "/api/v1/channels/{id}/thumbnail.jpg",
        perm(P::ChannelsRead),
        "channel.thumbnail",
    ),
    rule(
        "GET",
        "/api/v1/channels/{id}/recording",
        perm(P::ChannelsRead),
        "recording.settings_read",
    ),
    rule(
        "PUT",
        "/api/v1/channels/{id}/recording",
        perm(P::ChannelsWrite),
        "recording.settings_update",
    ),
    rule(
        "GET",
        "/api/v1/recordings",
        perm(P::ChannelsRead),
        "recording.list",
    ),
    rule(
        "GET",
        "/api/v1/recordings/usage",
        perm(P::ChannelsRead),
        "recording.usage",
    ),
    rule(
        "GET",
        "/api/v1/recordings/{id}",
        perm(P::ChannelsRead),
        "recording.read",
    ),
    rule(
        "DELETE",
        "/api/v1/recordings/{id}",
        perm(P::ChannelsWrite),
        "recording.delete",
    ),
    rule(
        "GET",
        "/api/v1/recordings/{id}/download",
        perm(P::ChannelsRead),
        "recording.download",
    ),
    rule(
        "GET",
        "/api/v1/recordings/{id}/media.mp4",
        perm(P::ChannelsRead),
        "recording.download",
    ),
    rule(
        "GET",
        "/api/v1/recordings/{id}/index.m3u8",
        perm(P::ChannelsRead),
        "recording.playlist",
    ),
    // encoding presets: everyone who sees channels reads them; admins manage them
    rule(
        "GET",
        "/api/v1/presets",
        perm(P::ChannelsRead),
        "preset.list",
    ),
    rule(
        "POST",
        "/api/v1/presets",
        perm(P::PresetsManage),
        "preset.create",
    ),
    rule(
        "GET",
        "/api/v1/presets/platform/{platform}",
        perm(P::ChannelsRead),
        "preset.list_platform",
    ),
    rule(
        "GET",
        "/api/v1/presets/export",
        perm(P::ChannelsRead),
        "preset.export",
    ),
    rule(
        "POST",
        "/api/v1/presets/import",
        perm(P::PresetsManage),
        "preset.import",
    ),
    rule(
        "GET",
        "/api/v1/presets/{id}",
        perm(P::ChannelsRead),
        "preset.read",
    ),
    rule(
        "PUT",
        "/api/v1/presets/{id}",
        perm(P::PresetsManage),
        "preset.update",
    ),
    rule(
        "DELETE",
        "/api/v1/presets/{id}",
        perm(P::PresetsManage),
        "preset.delete",
    ),
    rule(
        "POST",
        "/api/v1/presets/{id}/clone",
        perm(P::PresetsManage),
        "preset.clone",
    ),
    // the advertising workspace (seed 002): row rules in crate::ads
    rule(
        "GET",
        "/api/v1/clients",
        perm(P::AdClientsRead),
        "ad_client.list",
    ),
    rule(
        "POST",
        "/api/v1/clients",
        perm(P::AdClientsWrite),
        "ad_client.create",
    ),
    rule(
        "GET",
        "/api/v1/clients/{id}",
        perm(P::AdClientsRead),
        "ad_client.read",
    ),
    rule(
        "PUT",
        "/api/v1/clients/{id}",
        perm(P::AdClientsWrite),
        "ad_client.update",
    ),
    rule(
        "DELETE",
        "/api/v1/clients/{id}",
        perm(P::AdClientsWrite),
        "ad_client.delete",
    ),
    rule(
        "POST",
        "/api/v1/clients/{id}/users",
        perm(P::AdClientsWrite),
        "ad_client.user_link",
    ),
    rule(
        "DELETE",
        "/api/v1/clients/{id}/users/{user_id}",
        perm(P::AdClientsWrite),
        "ad_client.user_unlink",
    ),
    rule("GET", "/api/v1/shows", perm(P::ShowsRead), "show.list"),
    rule("POST", "/api/v1/shows", perm(P::ShowsWrite), "show.create"),
    rule("GET", "/api/v1/shows/{id}", perm(P::ShowsRead), "show.read"),
    rule(
        "PUT",
        "/api/v1/shows/{id}",
        perm(P::ShowsWrite),
        "show.update",
    ),
    rule(
        "DELETE",
        "/api/v1/shows/{id}",
        perm(P::ShowsWrite),
        "show.delete",
    ),
    rule(
        "GET",
        "/api/v1/episodes",
        perm(P::EpisodesRead),
        "episode.list",
    ),
    rule(
        "POST",
        "/api/v1/episodes",
        perm(P::EpisodesWrite),
        "episode.create",
    ),
    rule(
        "GET",
        "/api/v1/episodes/{id}",
        perm(P::EpisodesRead),
        "episode.read",
    ),
    rule(
        "PUT",
        "/api/v1/episodes/{id}",
        perm(P::EpisodesWrite),
        "episode.update",
    ),
    rule(
        "DELETE",
        "/api/v1/episodes/{id}",
        perm(P::EpisodesWrite),
        "episode.delete",
    ),
    rule(
        "GET",
        "/api/v1/campaigns",
        perm(P::CampaignsRead),
        "campaign.list",
    ),
    rule(
        "POST",
        "/api/v1/campaigns",
        perm(P::CampaignsWrite),
        "campaign.create",
    ),
    rule(
        "GET",
        "/api/v1/campaigns/{id}",
        perm(P::CampaignsRead),
        "campaign.read",
    ),
    rule(
        "PUT",
        "/api/v1/campaigns/{id}",
        perm(P::CampaignsWrite),
        "campaign.update",
    ),
    rule(
        "DELETE",
        "/api/v1/campaigns/{id}",
        perm(P::CampaignsWrite),
        "campaign.delete",
    ),
    rule(
        "POST",
        "/api/v1/campaigns/{id}/team",
        perm(P::CampaignsWrite),
        "campaign.team_add",
    ),
    rule(
        "DELETE",
        "/api/v1/campaigns/{id}/team/{user_id}",
        perm(P::CampaignsWrite),
        "campaign.team_remove",
    ),
    rule(
        "GET",
        "/api/v1/campaigns/{id}/placements",
        perm(P::CampaignsRead),
        "campaign.placement_list",
    ),
    rule(
        "POST",
        "/api/v1/campaigns/{id}/placements",
        perm(P::CampaignsWrite),
        "campaign.placement_add",
    ),
    rule(
        "DELETE",
        "/api/v1/campaigns/{id}/placements/{placement_id}",
        perm(P::CampaignsWrite),
        "campaign.placement_remove",
    ),
    rule(
        "GET",
        "/api/v1/campaigns/{id}/report",
        perm(P::CampaignsRead),
        "campaign.report",
    ),
    rule(
        "GET",
        "/api/v1/clients/{id}/billing",
        perm(P::AdClientsRead),
        "ad_client.billing",
    ),
    rule(
        "GET",
        "/api/v1/ads/inventory",
        perm(P::CampaignsWrite),
        "ads.inventory",
    ),
    rule(
        "GET",
        "/api/v1/ads/people",
        perm(P::ActivitiesRead),
        "ads.people",
    ),
    rule(
        "GET",
        "/api/v1/availability",
        perm(P::AvailabilityManage),
        "availability.list",
    ),
    rule(
        "POST",
        "/api/v1/availability",
        perm(P::AvailabilityManage),
        "availability.create",
    ),
    rule(
        "DELETE",
        "/api/v1/availability/{id}",
        perm(P::AvailabilityManage),
        "availability.delete",
    ),
    rule(
        "GET",
        "/api/v1/activities",
        perm(P::ActivitiesRead),
        "activity.list",
    ),
    rule(
        "POST",
        "/api/v1/activities",
        perm(P::ActivitiesRead),
        "activity.log",
    ),
    rule(
        "GET",
        "/api/v1/activities/{id}",
        perm(P::ActivitiesRead),
        "activity.read",
    ),
    // backups (issue #10): administrators only
    rule(
        "GET",
        "/api/v1/backups",
        perm(P::BackupsManage),
        "backup.list",
    ),
    rule(
        "POST",
        "/api/v1/backups",
        perm(P::BackupsManage),
        "backup.create",
    ),
    rule(
        "GET",
        "/api/v1/backups/{id}",
        perm(P::BackupsManage),
        "backup.read",
    ),
    rule(
        "DELETE",
        "/api/v1/backups/{id}",
        perm(P::BackupsManage),
        "backup.delete",
    ),
    rule(
        "GET",
        "/api/v1/backups/{id}/download",
        perm(P::BackupsManage),
        "backup.download",
    ),
    rule(
        "POST",
        "/api/v1/backups/upload",
        perm(P::BackupsManage),
        "backup.upload",
    ),
    rule(
        "POST",
        "/api/v1/backups/restore",
        perm(P::BackupsManage),
        "backup.restore",
    ),
    rule(
        "GET",
        "/api/v1/backups/schedule",
        perm(P::BackupsManage),
        "backup.schedule_read",
    ),
    rule(
        "PUT",
        "/api/v1/backups/schedule",
        perm(P::BackupsManage),
        "backup.schedule_update",
    ),
    // the viewer platform (issue 11): catalog, playback, viewing, accounts, subscriptions
    rule("GET", "/api/v1/streams/live", Public, "stream.list_live"),
    rule(
        "GET",
        "/api/v1/streams/featured",
        Public,
        "stream.list_featured",
    ),
    rule("GET", "/api/v1/streams/categories", Public, "category.list"),
    rule(
        "POST",
        "/api/v1/streams/categories",
        perm(P::ViewersManage),
        "category.create",
    ),
    rule(
        "PATCH",
        "/api/v1/streams/categories/{id}",
        perm(P::ViewersManage),
        "category.update",
    ),
    rule(
        "DELETE",
        "/api/v1/streams/categories/{id}",
        perm(P::ViewersManage),
        "category.delete",
    ),
    rule("GET", "/api/v1/streams/search", Public, "stream.search"),
    rule("GET", "/api/v1/streams/trending", Public, "stream.trending"),
    rule("GET", "/api/v1/streams/{id}", Public, "stream.read"),
    rule(
        "PATCH",
        "/api/v1/streams/{id}",
        perm(P::CatalogManage),
        "stream.update",
    ),
    rule(
        "GET",
        "/api/v1/streams/{id}/thumbnail.jpg",
        Public,
        "stream.thumbnail",
    ),
    rule(
        "POST",
        "/api/v1/streams/{id}/playback",
        Public,
        "stream.playback",
    ),
    telemetry(rule(
        "POST",
        "/api/v1/viewing/start",
        Public,
        "viewing.start",
    )),
    telemetry(rule(
        "POST",
        "/api/v1/viewing/{id}/progress",
        Public,
        "viewing.progress",
    )),
    telemetry(rule(
        "POST",
        "/api/v1/viewing/{id}/end",
        Public,
        "viewing.end",
    )),
    rule(
        "GET",
        "/api/v1/viewing/history",
        Authenticated,
        "viewing.history",
    ),
    rule(
        "DELETE",
        "/api/v1/viewing/history",
        Authenticated,
        "viewing.history_clear",
    ),
    rule(
        "GET",
        "/api/v1/viewing/continue",
        Authenticated,
        "viewing.continue",
    ),
    rule(
        "GET",
        "/api/v1/viewing/saved",
        Authenticated,
        "viewing.saved_list",
    ),
    rule(
        "PUT",
        "/api/v1/viewing/saved/{stream_id}",
        Authenticated,
        "viewing.save",
    ),
    rule(
        "DELETE",
        "/api/v1/viewing/saved/{stream_id}",
        Authenticated,
        "viewing.unsave",
    ),
    rule(
        "GET",
        "/api/v1/viewer/me",
        perm(P::SelfManage),
        "viewer.read",
    ),
    rule(
        "PATCH",
        "/api/v1/viewer/me",
        perm(P::SelfManage),
        "viewer.update",
    ),
    rule(
        "DELETE",
        "/api/v1/viewer/me",
        perm(P::SelfManage),
        "viewer.delete",
    ),
    rule(
        "PUT",
        "/api/v1/viewer/me/parental",
        perm(P::SelfManage),
        "viewer.parental_set",
    ),
    rule(
        "POST",
        "/api/v1/viewer/me/parental/verify",
        perm(P::SelfManage),
        "viewer.parental_verify",
    ),
    rule(
        "GET",
        "/api/v1/viewer/me/blocked",
        perm(P::SelfManage),
        "viewer.blocked_list",
    ),
    rule(
        "PUT",
        "/api/v1/viewer/me/blocked/{user_id}",
        perm(P::SelfManage),
        "viewer.block",
    ),
    rule(
        "DELETE",
        "/api/v1/viewer/me/blocked/{user_id}",
        perm(P::SelfManage),
        "viewer.unblock",
    ),
    rule(
        "GET",
        "/api/v1/viewer/me/follows",
        perm(P::SelfManage),
        "viewer.follows_list",
    ),
    rule(
        "PUT",
        "/api/v1/viewer/me/follows/{creator_id}",
        perm(P::SelfManage),
        "viewer.follow",
    ),
    rule(
        "DELETE",
        "/api/v1/viewer/me/follows/{creator_id}",
        perm(P::SelfManage),
        "viewer.unfollow",
    ),
    rule(
        "GET",
        "/api/v1/viewer/me/export",
        perm(P::SelfManage),
        "viewer.export",
    ),
    rule(
        "GET",
        "/api/v1/viewer/me/stats",
        perm(P::SelfManage),
        "viewer.stats",
    ),
    rule(
        "GET",
        "/api/v1/viewer/me/recommendations",
        perm(P::SelfManage),
        "viewer.recommendations",
    ),
    rule(
        "GET",
        "/api/v1/subscriptions/plans",
        Public,
        "subscription.plans",
    ),
    rule(
        "POST",
        "/api/v1/subscriptions",
        perm(P::SelfManage),
        "subscription.checkout",
    ),
    rule(
        "GET",
        "/api/v1/subscriptions/me",
        perm(P::SelfManage),
        "subscription.read",
    ),
    rule(
        "POST",
        "/api/v1/subscriptions/me/cancel",
        perm(P::SelfManage),
        "subscription.cancel",
    ),
    rule(
        "GET",
        "/api/v1/viewer-admin/catalog",
        perm(P::CatalogManage),
        "viewer_admin.catalog",
    ),
    rule(
        "GET",
        "/api/v1/viewer-admin/accounts",
        perm(P::ViewersManage),
        "viewer_admin.accounts",
    ),
    rule(
        "GET",
        "/api/v1/viewer-admin/subscriptions",
        perm(P::ViewersManage),
        "viewer_admin.subscriptions",
    ),
    rule(
        "GET",
        "/api/v1/viewer-admin/analytics",
        perm(P::ViewersManage),
        "viewer_admin.analytics",
    ),
];

/// Routes served outside the OpenAPI document (the document itself and its viewer).
pub const UNDOCUMENTED: &[&str] = &["/api/v1/openapi.json", "/api/v1/docs"];

/// The rule of `method` on the route template `path` (HEAD follows GET).
pub fn route_rule(method: &str, path: &str) -> Option<&'static RouteRule> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Whether any method of `path` has a rule.
pub fn path_known(path: &str) -> bool {
    ROUTES.iter().any(|r| r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_openapi_operation_has_exactly_one_rule_and_back() {
        let doc = crate::openapi();
        let mut seen = std::collections::HashSet::new();
        for (path, item) in doc.paths.paths.iter() {
            let ops = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in ops {
                if present {
                    assert!(
                        route_rule(method, path).is_some(),
                        "{method} {path} has no rule in auth::permissions::ROUTES"
                    );
                    seen.insert((method, path.clone()));
                }
            }
        }
        for r in ROUTES {
            if UNDOCUMENTED.contains(&r.path) {
                continue;
            }
            assert!(
                seen.contains(&(r.method, r.path.to_string())),
                "rule {} {} names no documented operation",
                r.method,
                r.path
            );
        }
        let mut unique = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                unique.insert((r.method, r.path)),
                "duplicate rule {} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn only_admins_manage_users_and_audience_has_no_staff_powers() {
        for role in Role::ALL {
            assert_eq!(allows(role, Permission::UsersManage), role == Role::Admin);
            if role.is_audience() {
                assert_eq!(granted(role), &[Permission::SelfManage]);
            }
        }
        assert!(!allows(Role::ApiOnly, Permission::SelfManage));
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap().as_str(), Some(p.as_str()));
        }
    }
}
