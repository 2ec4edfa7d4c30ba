//! The permission table: the single source of truth for what each role may do. Every route
//! names the permission it needs; `GET /api/v1/permissions` shows this table.

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
    /// Own profile and sessions.
    SelfManage,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::ChannelsRead,
        Permission::ChannelsWrite,
        Permission::ChannelsManageAll,
        Permission::SecretsReveal,
        Permission::SelfManage,
    ];
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
        ],
        Role::Operator => &[ChannelsRead, ChannelsWrite, SecretsReveal, SelfManage],
        Role::Viewer => &[ChannelsRead, SelfManage],
        Role::ApiOnly => &[ChannelsRead, ChannelsWrite],
        Role::Seller | Role::Producer | Role::Talent | Role::Client => &[SelfManage],
        Role::ConsumerAdmin => &[SelfManage],
        Role::Free | Role::Premium | Role::Vip => &[SelfManage],
    }
}

pub fn allows(role: Role, permission: Permission) -> bool {
    granted(role).contains(&permission)
}
