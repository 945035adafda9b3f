//! The preprocessing an evaluated dataset goes through: the decode, detect, crop and ssim
//! settings the models were trained with, since a detector judges faces cut the way its training
//! faces were. A setting the user gave for the evaluated dataset (in the config file or with
//! `--set`, seen as a value other than the default) wins, with a warning that names it.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Config;

/// The config sections that decide what the models see.
pub const SECTIONS: [&str; 4] = ["decode", "detect", "crop", "ssim"];

/// One setting the user overrode: `section.key`, their value, the models'.
#[derive(Debug, Clone, PartialEq)]
pub struct Overridden {
    pub key: String,
    pub ours: Value,
    pub trained_with: Value,
}

impl std::fmt::Display for Overridden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} = {} overrides {}, the value the models were trained with",
            self.key, self.ours, self.trained_with
        )
    }
}

/// `config` with the models' preprocessing sections (from `trained`, the `config` of the run that
/// trained them); returns it and the settings the user overrode.
pub fn with_training_preprocessing(
    config: &Config,
    trained: &Value,
) -> Result<(Config, Vec<Overridden>)> {
    let mut merged = config.clone();
    let defaults = Config::default();
    let mut overridden = Vec::new();
    merged.decode = section(
        "decode",
        &config.decode,
        &defaults.decode,
        trained,
        &mut overridden,
    )?;
    merged.detect = section(
        "detect",
        &config.detect,
        &defaults.detect,
        trained,
        &mut overridden,
    )?;
    merged.crop = section(
        "crop",
        &config.crop,
        &defaults.crop,
        trained,
        &mut overridden,
    )?;
    merged.ssim = section(
        "ssim",
        &config.ssim,
        &defaults.ssim,
        trained,
        &mut overridden,
    )?;
    merged
        .validate()
        .context("the models' preprocessing settings with this config's")?;
    Ok((merged, overridden))
}

/// One section: the models' value of each key, unless ours differs from the default.
fn section<T: Serialize + DeserializeOwned>(
    name: &str,
    ours: &T,
    default: &T,
    trained: &Value,
    overridden: &mut Vec<Overridden>,
) -> Result<T> {
    let ours = object(name, serde_json::to_value(ours)?)?;
    let default = object(name, serde_json::to_value(default)?)?;
    let Some(theirs) = trained.get(name) else {
        anyhow::bail!("the models' run record has no `{name}` settings");
    };
    let theirs = object(name, theirs.clone())?;
    let mut merged = Map::new();
    for (key, value) in &ours {
        let trained_with = theirs.get(key);
        let set_by_user = default.get(key) != Some(value);
        let chosen = match trained_with {
            Some(t) if !set_by_user => t.clone(),
            Some(t) => {
                if t != value {
                    overridden.push(Overridden {
                        key: format!("{name}.{key}"),
                        ours: value.clone(),
                        trained_with: t.clone(),
                    });
                }
                value.clone()
            }
            // A key newer than the models' record: they were trained with its default.
            None => value.clone(),
        };
        merged.insert(key.clone(), chosen);
    }
    serde_json::from_value(Value::Object(merged))
        .with_context(|| format!("the models' `{name}` settings do not fit this version of dfd"))
}

fn object(name: &str, value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => anyhow::bail!("`{name}` settings are not a table: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained(frames: u64) -> Value {
        let mut config = serde_json::to_value(Config::default()).unwrap();
        config["decode"]["frames_per_video"] = frames.into();
        config
    }

    #[test]
    fn the_models_settings_are_taken_where_the_user_set_nothing() {
        let (merged, overridden) =
            with_training_preprocessing(&Config::default(), &trained(7)).unwrap();
        assert_eq!(merged.decode.frames_per_video, 7);
        assert!(overridden.is_empty(), "{overridden:?}");
    }

    #[test]
    fn a_setting_the_user_gave_wins_and_is_named() {
        let mut ours = Config::default();
        ours.decode.frames_per_video = 5;
        let (merged, overridden) = with_training_preprocessing(&ours, &trained(7)).unwrap();
        assert_eq!(merged.decode.frames_per_video, 5);
        assert_eq!(overridden.len(), 1, "{overridden:?}");
        assert_eq!(
            overridden[0].to_string(),
            "decode.frames_per_video = 5 overrides 7, the value the models were trained with"
        );
    }

    #[test]
    fn a_record_without_the_section_is_refused_by_name() {
        let err = with_training_preprocessing(&Config::default(), &serde_json::json!({}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `decode` settings"), "{err}");
    }
}
