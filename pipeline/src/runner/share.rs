//! Which shards one task of an array job computes: `dfd run --shard I/N` or `--shard auto`.
//!
//! The assignment is static and needs no coordinator: shard `s` (the `s`-th group of
//! `runner.videos_per_shard` videos of ingest's `videos` table) belongs to task `s mod N`. The same
//! `I/N` on the same data always names the same shards, so a scheduler retrying one index redoes
//! exactly that index's work, and what it finished before is found in the shard store.

use std::fmt;

/// Task `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` value or scheduler variable that cannot be used; the message names it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    #[error("--shard {0:?}: expected I/N (task I of N, 0 <= I < N) or `auto`")]
    Malformed(String),
    #[error("--shard {given:?}: task index {index} is not below the task count {count}")]
    OutOfRange {
        given: String,
        index: usize,
        count: usize,
    },
    #[error(
        "--shard auto: no array task index in the environment (SLURM_ARRAY_TASK_ID for a Slurm \
         array job, JOB_COMPLETION_INDEX for a Kubernetes Indexed Job); pass --shard I/N instead"
    )]
    NoScheduler,
    #[error("--shard auto: {variable} is not set (needed with {with})")]
    Missing {
        variable: &'static str,
        with: &'static str,
    },
    #[error("--shard auto: {variable}={value:?} is not a non-negative whole number")]
    NotANumber { variable: String, value: String },
    #[error("--shard auto: task {index} of {count} (from {source_vars}) is out of range")]
    AutoOutOfRange {
        index: usize,
        count: usize,
        source_vars: &'static str,
    },
}

impl Share {
    /// Parses `I/N`, or with `auto` reads the scheduler's variables through `env` (the process
    /// environment in use; a function so tests need not change it). `count` is the task count
    /// given on the command line (`--shard-count`), which Kubernetes needs: it exports no count.
    pub fn resolve(
        given: &str,
        count: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Share, ShareError> {
        if given == "auto" {
            return Share::from_scheduler(count, env);
        }
        let malformed = || ShareError::Malformed(given.to_string());
        let (index, total) = given.split_once('/').ok_or_else(malformed)?;
        let index: usize = index.trim().parse().map_err(|_| malformed())?;
        let total: usize = total.trim().parse().map_err(|_| malformed())?;
        if total == 0 || index >= total {
            return Err(ShareError::OutOfRange {
                given: given.to_string(),
                index,
                count: total,
            });
        }
        Ok(Share {
            index,
            count: total,
        })
    }

    /// Slurm: `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT` (an array
    /// may start at 1). Kubernetes: `JOB_COMPLETION_INDEX` of `--shard-count`, else
    /// `DFD_SHARD_COUNT`.
    fn from_scheduler(
        count: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Share, ShareError> {
        let number = |variable: &'static str, with: &'static str| -> Result<usize, ShareError> {
            let value = env(variable).ok_or(ShareError::Missing { variable, with })?;
            value.trim().parse().map_err(|_| ShareError::NotANumber {
                variable: variable.to_string(),
                value,
            })
        };
        let (index, total, source_vars) = if env("SLURM_ARRAY_TASK_ID").is_some() {
            const WITH: &str = "SLURM_ARRAY_TASK_ID";
            let id = number("SLURM_ARRAY_TASK_ID", WITH)?;
            let min = number("SLURM_ARRAY_TASK_MIN", WITH)?;
            let total = number("SLURM_ARRAY_TASK_COUNT", WITH)?;
            (
                id.checked_sub(min).unwrap_or(usize::MAX),
                total,
                "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT",
            )
        } else if env("JOB_COMPLETION_INDEX").is_some() {
            const WITH: &str = "JOB_COMPLETION_INDEX (or pass --shard-count)";
            let index = number("JOB_COMPLETION_INDEX", WITH)?;
            let total = match count {
                Some(total) => total,
                None => number("DFD_SHARD_COUNT", WITH)?,
            };
            (
                index,
                total,
                "JOB_COMPLETION_INDEX of --shard-count / DFD_SHARD_COUNT",
            )
        } else {
            return Err(ShareError::NoScheduler);
        };
        if index >= total {
            return Err(ShareError::AutoOutOfRange {
                index,
                count: total,
                source_vars,
            });
        }
        Ok(Share {
            index,
            count: total,
        })
    }

    /// Whether shard `shard` of a per-video stage is this task's.
    pub fn owns(&self, shard: usize) -> bool {
        shard % self.count == self.index
    }

    /// The task that computes shard `shard` among `count` tasks.
    pub fn owner(shard: usize, count: usize) -> usize {
        shard % count.max(1)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(
        given: &str,
        count: Option<usize>,
        vars: &[(&str, &str)],
    ) -> Result<Share, ShareError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Share::resolve(given, count, &|name| vars.get(name).cloned())
    }

    #[test]
    fn i_of_n_is_parsed_and_checked() {
        assert_eq!(resolve("2/4", None, &[]), Ok(Share { index: 2, count: 4 }));
        for bad in ["4/4", "0/0"] {
            let err = resolve(bad, None, &[]).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("not below"), "{err}");
        }
        for bad in ["2", "a/4", "2/b", "-1/4", ""] {
            let err = resolve(bad, None, &[]).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("I/N"),
                "{err}"
            );
        }
    }

    #[test]
    fn auto_reads_slurm_from_the_array_minimum() {
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(
            resolve("auto", None, &slurm),
            Ok(Share { index: 2, count: 4 })
        );
        let err = resolve("auto", None, &slurm[..2]).unwrap_err().to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_COUNT is not set"), "{err}");
        let err = resolve("auto", None, &[("SLURM_ARRAY_TASK_ID", "x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_ID=\"x\""), "{err}");
    }

    #[test]
    fn auto_reads_kubernetes_with_our_count() {
        let k8s = [("JOB_COMPLETION_INDEX", "1")];
        let err = resolve("auto", None, &k8s).unwrap_err().to_string();
        assert!(err.contains("DFD_SHARD_COUNT is not set"), "{err}");
        assert_eq!(
            resolve("auto", Some(3), &k8s),
            Ok(Share { index: 1, count: 3 })
        );
        let with_var = [("JOB_COMPLETION_INDEX", "1"), ("DFD_SHARD_COUNT", "2")];
        assert_eq!(
            resolve("auto", None, &with_var),
            Ok(Share { index: 1, count: 2 })
        );
        let err = resolve("auto", Some(1), &k8s).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        let err = resolve("auto", None, &[]).unwrap_err().to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_ID") && err.contains("JOB_COMPLETION_INDEX"));
    }

    #[test]
    fn every_shard_has_exactly_one_owner() {
        for count in 1..5 {
            for shard in 0..10 {
                let owners = (0..count)
                    .filter(|&index| Share { index, count }.owns(shard))
                    .collect::<Vec<_>>();
                assert_eq!(owners, [Share::owner(shard, count)]);
            }
        }
    }
}
