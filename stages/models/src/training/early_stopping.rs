//! Keras's `EarlyStopping(monitor="val_loss", patience=…, restore_best_weights=True)` as a value
//! that can be checkpointed.

use serde::{Deserialize, Serialize};

/// What early stopping remembers between epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement after which training stops.
    pub patience: u32,
    /// Lowest monitored loss so far, `None` before the first epoch.
    pub best_loss: Option<f64>,
    /// The 1-based epoch that reached `best_loss` (0 before the first epoch).
    pub best_epoch: u32,
    /// Epochs since `best_loss` last improved (Keras's `wait`).
    pub epochs_since_improvement: u32,
}

/// What [`EarlyStopping::observe`] concluded about an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The epoch is the new best: keep its weights.
    pub improved: bool,
    /// Patience ran out: stop after this epoch.
    pub stop: bool,
}

impl EarlyStopping {
    pub fn new(patience: u32) -> Self {
        EarlyStopping {
            patience,
            best_loss: None,
            best_epoch: 0,
            epochs_since_improvement: 0,
        }
    }

    /// Records the monitored loss of `epoch`. As in Keras (`min_delta = 0`), only a strictly
    /// lower loss counts as an improvement; a NaN loss never does.
    pub fn observe(&mut self, epoch: u32, loss: f64) -> Verdict {
        let improved = match self.best_loss {
            None => !loss.is_nan(),
            Some(best) => loss < best,
        };
        if improved {
            self.best_loss = Some(loss);
            self.best_epoch = epoch;
            self.epochs_since_improvement = 0;
        } else {
            self.epochs_since_improvement += 1;
        }
        Verdict {
            improved,
            stop: self.epochs_since_improvement >= self.patience.max(1),
        }
    }
}
