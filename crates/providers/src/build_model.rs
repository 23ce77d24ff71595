//! `build_model`: a provider config becomes a shared [`ChatModel`](switchyard::ChatModel).

use switchyard::SharedModel;

use crate::build_error::ProviderError;
use crate::config::ProviderConfig;
use crate::provider::Provider;

/// Builds the client for `config.kind` and `config.model`, with its own pooled HTTP client.
///
/// To give several models of one provider a single pool, build a [`Provider`] and call [`Provider::model`].
pub fn build_model(config: ProviderConfig) -> Result<SharedModel, ProviderError> {
    let provider = Provider::new(&config)?;
    Ok(provider.model(config.model, config.timeouts))
}
