//! `ModelFallbackInterceptor`: when the rest of the chain fails, ask other models, in order.

use std::sync::Arc;

use async_trait::async_trait;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::interceptor::{ModelInterceptor, Next};
use crate::model::{ChatStream, SharedModel};
use crate::runner::{self, Policy, Target};
use crate::target::{ConfigError, check_unique};
use crate::types::{ChatRequest, ChatResponse};
use crate::validate::ResponseValidator;

const PRIMARY: &str = "primary";

/// Calls the rest of the chain; if that fails (as the error kind allows falling back), calls each
/// fallback model once, in order, with the same request (system prompt, tools, options and all).
/// Fallback answers are returned as they are, usage included. Works for streams as well.
pub struct ModelFallbackInterceptor {
    primary: String,
    fallbacks: Vec<SharedModel>,
    ids: Vec<String>,
    policy: Policy,
}

impl ModelFallbackInterceptor {
    /// Starts a builder.
    pub fn builder() -> ModelFallbackInterceptorBuilder {
        ModelFallbackInterceptorBuilder::default()
    }

    /// The rest of the chain (`primary` unless named), then each fallback (`fallback N` unless named):
    /// the ids used in attempts and `served_by`.
    fn targets<'a>(&'a self, next: &'a Next<'a>) -> Vec<Target<'a>> {
        let mut targets = Vec::with_capacity(self.fallbacks.len() + 1);
        targets.push(Target::plain(0, &self.primary, next));
        for (i, (model, id)) in self.fallbacks.iter().zip(&self.ids).enumerate() {
            targets.push(Target::plain(i + 1, id, model.as_ref()));
        }
        targets
    }
}

#[async_trait]
impl ModelInterceptor for ModelFallbackInterceptor {
    fn name(&self) -> &str {
        "ModelFallback"
    }

    async fn intercept(&self, request: ChatRequest, next: Next<'_>) -> Result<ChatResponse, Error> {
        runner::complete(&self.policy, &self.targets(&next), request, None).await
    }

    async fn intercept_stream(&self, request: ChatRequest, next: Next<'_>) -> Result<ChatStream, Error> {
        runner::stream(&self.policy, &self.targets(&next), request, None, None).await
    }
}

/// Builds a [`ModelFallbackInterceptor`].
#[derive(Default)]
pub struct ModelFallbackInterceptorBuilder {
    primary: Option<String>,
    fallbacks: Vec<(Option<String>, SharedModel)>,
    validator: Option<Arc<dyn ResponseValidator>>,
}

impl ModelFallbackInterceptorBuilder {
    /// Adds one fallback model after those already added (named `fallback N`, N counting from 1).
    pub fn add_fallback_model(mut self, model: SharedModel) -> Self {
        self.fallbacks.push((None, model));
        self
    }

    /// Adds one fallback model with the id that attempts, `served_by` and the agent's
    /// `ModelSwitched` events name it by.
    pub fn add_fallback_model_with_id(mut self, id: impl Into<String>, model: SharedModel) -> Self {
        self.fallbacks.push((Some(id.into()), model));
        self
    }

    /// Adds these fallback models, in order, after those already added.
    pub fn fallback_models(mut self, models: impl IntoIterator<Item = SharedModel>) -> Self {
        self.fallbacks.extend(models.into_iter().map(|m| (None, m)));
        self
    }

    /// Names the rest of the chain (the model the agent was built with) in attempts and
    /// `served_by`; default `primary`.
    pub fn primary_id(mut self, id: impl Into<String>) -> Self {
        self.primary = Some(id.into());
        self
    }

    /// Marks some answers as failures, so the next model is asked (e.g. [`ExceptionMarker`](crate::validate::ExceptionMarker)).
    pub fn validator(mut self, validator: Arc<dyn ResponseValidator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// Builds the interceptor; it needs at least one fallback model.
    pub fn build(self) -> Result<ModelFallbackInterceptor, ConfigError> {
        if self.fallbacks.is_empty() {
            return Err(ConfigError::NoFallbackModels);
        }
        let primary = self.primary.unwrap_or_else(|| PRIMARY.to_owned());
        let (ids, fallbacks): (Vec<String>, Vec<SharedModel>) = (1..)
            .zip(self.fallbacks)
            .map(|(i, (id, model))| (id.unwrap_or_else(|| format!("fallback {i}")), model))
            .unzip();
        check_unique(std::iter::once(&primary).chain(&ids).map(String::as_str))?;
        let policy = Policy { backoff: Backoff::Immediate, validator: self.validator, ..Policy::default() };
        Ok(ModelFallbackInterceptor { primary, fallbacks, ids, policy })
    }
}
