//! Account objects VMs refer to: SSH keys, startup scripts, tags and projects.
//!
//! Create calls return no identifier, so each `add_*` re-lists and returns the object it made.

use http::Method;
use serde::Deserialize;

use crate::api::vms::enc;
use crate::client::{Body, Call, VpsieClient};
use crate::error::{Error, Result};
use crate::wire::flex;

/// An SSH public key. The API calls the key field `private_key`; it holds the public key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SshKey {
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Name.
    #[serde(default, deserialize_with = "flex::string")]
    pub name: String,
    /// The public key.
    #[serde(default, rename = "private_key", deserialize_with = "flex::string")]
    pub public_key: String,
}

/// A startup script.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Script {
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Name; the API appends `.sh`.
    #[serde(default, deserialize_with = "flex::string")]
    pub script_name: String,
    /// Content.
    #[serde(default, deserialize_with = "flex::string")]
    pub script: String,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tag {
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Name.
    #[serde(default, deserialize_with = "flex::string")]
    pub name: String,
    /// Colour.
    #[serde(default, deserialize_with = "flex::string")]
    pub color: String,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Project {
    /// Numeric id (what VM create's `projectId` historically took).
    #[serde(default, deserialize_with = "flex::i64")]
    pub id: i64,
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Name.
    #[serde(default, deserialize_with = "flex::string")]
    pub name: String,
    /// Description.
    #[serde(default, deserialize_with = "flex::string")]
    pub description: String,
    /// The account's default project.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_default: bool,
}

#[derive(Deserialize)]
struct Rows<T> {
    rows: Vec<T>,
}

impl VpsieClient {
    /// Lists SSH keys.
    pub async fn list_ssh_keys(&self) -> Result<Vec<SshKey>> {
        Ok(self.call(Call::get("sshkey.list", "/apps/v2/sshkeys")).await?.data)
    }

    /// Gets an SSH key; a missing one is [`Error::NotFound`].
    pub async fn get_ssh_key(&self, identifier: &str) -> Result<SshKey> {
        Ok(self.call(Call::get("sshkey.get", format!("/apps/v2/sshkey/{}", enc(identifier)))).await?.data)
    }

    /// Adds an SSH key and returns it.
    pub async fn add_ssh_key(&self, name: &str, public_key: &str) -> Result<SshKey> {
        let body = Body::Json(serde_json::json!({ "name": name, "privateKey": public_key }));
        self.call::<serde_json::Value>(Call::send("sshkey.add", Method::POST, "/apps/v2/sshkey/add", body)).await?;
        let keys = self.list_ssh_keys().await?;
        keys.into_iter().rev().find(|k| k.name == name).ok_or(Error::NotFound { endpoint: "sshkey.add" })
    }

    /// Deletes an SSH key.
    pub async fn delete_ssh_key(&self, identifier: &str) -> Result<()> {
        let body = Body::Json(serde_json::json!({ "identifier": identifier }));
        self.call::<serde_json::Value>(
            Call::send("sshkey.delete", Method::DELETE, "/apps/v2/sshkey", body).retryable(),
        )
        .await?;
        Ok(())
    }

    /// Lists startup scripts.
    pub async fn list_scripts(&self) -> Result<Vec<Script>> {
        Ok(self.call(Call::get("script.list", "/apps/v2/scripts")).await?.data)
    }

    /// Gets a script; a missing one is [`Error::NotFound`].
    pub async fn get_script(&self, identifier: &str) -> Result<Script> {
        Ok(self.call(Call::get("script.get", format!("/apps/v2/script/{}", enc(identifier)))).await?.data)
    }

    /// Adds a bash startup script and returns it.
    pub async fn add_script(&self, name: &str, content: &str, tags: &[String]) -> Result<Script> {
        let body = Body::Json(serde_json::json!({
            "name": name, "scriptContent": content, "scriptType": "bash", "tags": tags,
        }));
        self.call::<serde_json::Value>(Call::send("script.add", Method::POST, "/apps/v2/script/add", body)).await?;
        let with_ext = format!("{name}.sh");
        let scripts = self.list_scripts().await?;
        scripts
            .into_iter()
            .rev()
            .find(|s| s.script_name == with_ext || s.script_name == name)
            .ok_or(Error::NotFound { endpoint: "script.add" })
    }

    /// Deletes a script.
    pub async fn delete_script(&self, identifier: &str) -> Result<()> {
        let body = Body::Json(serde_json::json!({ "scriptIdentifier": identifier }));
        self.call::<serde_json::Value>(
            Call::send("script.delete", Method::DELETE, "/apps/v2/script", body).retryable(),
        )
        .await?;
        Ok(())
    }

    /// Lists tags.
    pub async fn list_tags(&self) -> Result<Vec<Tag>> {
        Ok(self.call(Call::get("tag.list", "/apps/v2/tags")).await?.data)
    }

    /// Creates a tag, or returns the existing one of that name.
    pub async fn ensure_tag(&self, name: &str, color: &str) -> Result<Tag> {
        if let Some(t) = self.list_tags().await?.into_iter().find(|t| t.name == name) {
            return Ok(t);
        }
        let body = Body::Json(serde_json::json!({ "name": name, "color": color }));
        self.call::<serde_json::Value>(Call::send("tag.add", Method::POST, "/apps/v2/tags/add", body)).await?;
        self.list_tags().await?.into_iter().find(|t| t.name == name).ok_or(Error::NotFound { endpoint: "tag.add" })
    }

    /// Lists projects.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        Ok(self.call::<Rows<Project>>(Call::get("project.list", "/apps/v2/projects")).await?.data.rows)
    }

    /// Gets a project; a missing one is [`Error::NotFound`].
    pub async fn get_project(&self, identifier: &str) -> Result<Project> {
        Ok(self.call(Call::get("project.get", format!("/apps/v2/projects/{}", enc(identifier)))).await?.data)
    }

    /// Creates a project and returns it.
    pub async fn add_project(&self, name: &str, description: &str) -> Result<Project> {
        let body = Body::Json(serde_json::json!({ "name": name, "description": description }));
        self.call::<serde_json::Value>(Call::send("project.add", Method::POST, "/apps/v2/projects/add", body)).await?;
        let projects = self.list_projects().await?;
        projects.into_iter().rev().find(|p| p.name == name).ok_or(Error::NotFound { endpoint: "project.add" })
    }
}
