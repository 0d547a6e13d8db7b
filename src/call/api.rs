//! What the HTTP API may ask of the core: views of agents and queues, and agent
//! state changes. Answers are JSON values so the HTTP layer needs no core types.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use super::Core;

/// An agent state change requested through the API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentAction {
    /// Available for calls: unpause, or log in at the agent's registered contact.
    /// (Variants with braces: serde refuses unknown fields only in those.)
    Ready {},
    /// Not offered calls until made ready again.
    Paused {
        #[serde(default = "default_reason")]
        reason: String,
    },
    /// Out of the ACD until the next REGISTER or `ready`.
    LoggedOut {},
}

fn default_reason() -> String {
    "api".into()
}

/// Why an API request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    #[error("{0}")]
    Refused(String),
    #[error("no call {0:?} in progress")]
    UnknownCall(String),
    #[error("{0} is not in the transfer directory")]
    NotInDirectory(String),
    /// A third party cannot be added now: the stable code and why.
    #[error("{1}")]
    Party(&'static str, String),
}

impl Core {
    /// `GET /api/v1/agents`.
    pub fn agents_view(&self, now: Instant) -> Value {
        let agents: Vec<Value> = self
            .sh
            .acd
            .agents(now)
            .map(|a| {
                let mut v = serde_json::to_value(&a).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    let registered = !self.sh.registrar.lookup(now, &a.id).is_empty();
                    m.insert("registered".into(), registered.into());
                    // The call's record id (as in its screen pop's
                    // X-Hotline-Call-Id), for call control by the API.
                    let id = a.call.map(|k| self.sh.call_id_of(k));
                    m.insert("call_id".into(), id.into());
                }
                v
            })
            .collect();
        json!({ "agents": agents })
    }

    /// `GET /api/v1/queues`.
    pub fn queues_view(&self, now: Instant) -> Value {
        json!({ "queues": self.sh.acd.queues(now) })
    }

    /// `POST /api/v1/agents/{id}/state`.
    pub fn agent_action(
        &mut self,
        now: Instant,
        agent: &str,
        action: AgentAction,
    ) -> Result<Value, ApiError> {
        if self.sh.acd.agent(agent, now).is_none() {
            return Err(ApiError::UnknownAgent(agent.to_string()));
        }
        let result = match action {
            AgentAction::Paused { reason } => self.sh.acd.pause(agent, reason, now),
            AgentAction::LoggedOut {} => self.sh.acd.logout(agent, now),
            AgentAction::Ready {} => {
                let logged_out = self
                    .sh
                    .acd
                    .agent_state(agent)
                    .is_some_and(|s| matches!(s, crate::acd::AgentState::LoggedOut));
                if logged_out {
                    let contact = self
                        .sh
                        .registrar
                        .lookup(now, agent)
                        .first()
                        .map(|b| b.contact.clone());
                    match contact {
                        Some(c) => self.sh.acd.login(agent, c, now),
                        None => {
                            return Err(ApiError::Refused(format!(
                                "agent {agent} is not registered: register a softphone first"
                            )));
                        }
                    }
                } else {
                    self.sh.acd.unpause(agent, now)
                }
            }
        };
        result.map_err(|e| ApiError::Refused(e.to_string()))?;
        self.settle(now);
        Ok(serde_json::to_value(self.sh.acd.agent(agent, now)).unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::AgentAction;

    #[test]
    fn agent_actions_refuse_fields_they_do_not_take() {
        let parse = |s: &str| serde_json::from_str::<AgentAction>(s);
        assert_eq!(
            parse(r#"{"state":"ready"}"#).unwrap(),
            AgentAction::Ready {}
        );
        assert_eq!(
            parse(r#"{"state":"logged_out"}"#).unwrap(),
            AgentAction::LoggedOut {}
        );
        assert_eq!(
            parse(r#"{"state":"paused","reason":"lunch"}"#).unwrap(),
            AgentAction::Paused {
                reason: "lunch".into()
            }
        );
        assert!(parse(r#"{"state":"ready","reason":"x"}"#).is_err());
        assert!(parse(r#"{"state":"paused","why":"x"}"#).is_err());
        assert!(parse(r#"{"state":"busy"}"#).is_err());
    }
}
