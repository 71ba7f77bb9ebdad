//! [`ConfigError`]: why a model configuration cannot be built.

/// Why a model configuration cannot be built. Keys are named as a run file's `[model]`
/// section names them (`output_stride`, `decoder_channels`, …), and `image_size` for the
/// input size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A model name the registry does not have.
    #[error("name: unknown model {name:?}; expected one of {expected}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Every registered name, comma separated.
        expected: String,
    },
    /// An option the model's family does not take.
    #[error("{key}: {model} does not take this key")]
    Refused {
        /// The option.
        key: &'static str,
        /// The model's registry name.
        model: String,
    },
    /// A setting out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The setting.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
}

impl ConfigError {
    /// The key at fault (`name` for an unknown model).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::UnknownModel { .. } => "name",
            ConfigError::Refused { key, .. } => key,
            ConfigError::Invalid { key, .. } => key,
        }
    }

    /// What is wrong, without the key.
    pub fn message(&self) -> String {
        match self {
            ConfigError::UnknownModel { name, expected } => {
                format!("unknown model {name:?}; expected one of {expected}")
            }
            ConfigError::Refused { model, .. } => format!("{model} does not take this key"),
            ConfigError::Invalid { message, .. } => message.clone(),
        }
    }

    /// The same error under another key (a configuration field set from a run-file option
    /// of another name).
    pub(crate) fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            ConfigError::Invalid { key, message } if key == from => ConfigError::Invalid {
                key: to.to_string(),
                message,
            },
            other => other,
        }
    }
}
