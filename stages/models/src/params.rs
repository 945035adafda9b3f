//! Parameter counts as Keras's `model.summary()` reports them ("Total params"), so our models can
//! be checked against the reference study's numbers.
//!
//! Keras counts trainable *and* non-trainable weights, and BatchNormalization's moving mean and
//! variance are non-trainable weights: 4 values per channel, where only gamma and beta train. In
//! burn 0.22.1 the running statistics are `RunningState`s, which module visitors see as float
//! tensors like any `Param`, so burn's own `Module::num_params` happens to count them too (the
//! `param_counts` test pins that). We count with our own visitor anyway, so that the number we
//! report is defined here and a change of burn's accounting cannot move it silently.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// Total number of float values in the module's parameters and running statistics: Keras's
/// "Total params".
pub fn keras_param_count<M: Module>(module: &M) -> usize {
    let mut counter = FloatCounter::default();
    module.visit(&mut counter);
    counter.count
}

#[derive(Default)]
struct FloatCounter {
    count: usize,
}

impl ModuleVisitor for FloatCounter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.count += param.shape().num_elements();
    }
}

/// The ids of every float parameter of `module`: how the training loop tells a backbone's
/// parameters from the head's (see [`crate::Detector::backbone_param_ids`]).
pub fn param_ids<M: Module>(module: &M) -> Vec<ParamId> {
    let mut collector = IdCollector::default();
    module.visit(&mut collector);
    collector.ids
}

#[derive(Default)]
struct IdCollector {
    ids: Vec<ParamId>,
}

impl ModuleVisitor for IdCollector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.push(param.id);
    }
}
