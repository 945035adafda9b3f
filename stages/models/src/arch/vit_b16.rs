//! ViT-B/16 as the reference study used it: vit-keras's `vit_b16(image_size=224,
//! include_top=False, pretrained_top=False)`, whose output is the class token after the final
//! LayerNorm (768 features).
//!
//! Standard ViT-B/16: 16 x 16 patches embedded by a stride-16 convolution (196 tokens of 768), a
//! learned class token (zeros at first, as in vit-keras) and learned position embeddings for the
//! 197 tokens (normal, std 0.06, as in vit-keras), twelve pre-norm encoder blocks (12 heads, MLP
//! 3072, exact GELU, dropout 0.1 in training), LayerNorm epsilon 1e-6. 85,798,656 parameters.
//!
//! Input scaling. vit-keras's model has no preprocessing layer; its `preprocess_inputs` maps
//! 0..255 pixels to `[-1, 1]` outside the model, and its ImageNet weights expect that. We put the
//! `2x - 1` for our `[0, 1]` input inside the model, so that every caller (training, ONNX scoring)
//! gets it and nobody has to remember it. What the reference fed its ViT is not visible in its
//! repository (the ViT scripts are not there); the other scripts feed `rescale=1/255` images.
//!
//! The final LayerNorm is applied to the class token alone: LayerNorm acts per token, so this is
//! the value vit-keras computes (normalise all 197 tokens, then take the first) at 1/197 of the
//! cost.
//!
//! Could not be pinned down: vit-keras's Dense layers keep Keras's Glorot-uniform default, which we
//! use, while the original ViT initialises biases with a small normal; and whether vit-keras
//! applies dropout right after adding the position embeddings (the original does); we do not. Both
//! affect training only, not the architecture, the parameter count or the exported function.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm};
use burn::tensor::{Device, Tensor};

use super::blocks::transformer::{export_layer_norm, layer_norm, EncoderBlock};
use crate::detector::ArchitectureBackbone;
use crate::export;
use crate::head::HeadConfig;
use crate::multi::MultiConfig;
use crate::onnx::{Attr, ExportError, OnnxGraph};
use crate::variant::Architecture;
use crate::{Backbone, FACE_SIZE};

/// Width of the tokens and of the feature vector.
pub const FEATURE_LEN: usize = 768;
const PATCH: usize = 16;
const LAYERS: usize = 12;
const HEADS: usize = 12;
const MLP_WIDTH: usize = 3072;
const DROPOUT: f64 = 0.1;
/// vit-keras's `AddPositionEmbs` initializer: normal with standard deviation 0.06.
const POSITION_STD: f64 = 0.06;

/// Patches per image plus the class token: `(224 / 16)^2 + 1 = 197`.
const TOKENS: usize = (FACE_SIZE / PATCH) * (FACE_SIZE / PATCH) + 1;

/// The backbone; see the module documentation.
#[derive(Module, Debug)]
pub struct VitB16 {
    pub patch_embedding: Conv2d,
    pub class_token: Param<Tensor<3>>,
    pub position_embedding: Param<Tensor<3>>,
    pub blocks: Vec<EncoderBlock>,
    pub norm: LayerNorm,
}

impl VitB16 {
    /// A freshly initialised backbone.
    pub fn new(device: &Device) -> Self {
        let mut patch_embedding = Conv2dConfig::new([3, FEATURE_LEN], [PATCH, PATCH])
            .with_stride([PATCH, PATCH])
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        patch_embedding.bias = patch_embedding
            .bias
            .map(|b| Param::from_tensor(Tensor::zeros(b.shape(), device)));
        let position_embedding = Initializer::Normal {
            mean: 0.0,
            std: POSITION_STD,
        }
        .init([1, TOKENS, FEATURE_LEN], device);
        VitB16 {
            patch_embedding,
            class_token: Initializer::Zeros.init([1, 1, FEATURE_LEN], device),
            position_embedding,
            blocks: (0..LAYERS)
                .map(|_| EncoderBlock::new(FEATURE_LEN, HEADS, MLP_WIDTH, DROPOUT, device))
                .collect(),
            norm: layer_norm(FEATURE_LEN, device),
        }
    }

    /// `[N, 3, 224, 224]` in `[0, 1]` -> tokens `[N, 197, 768]`: patches, class token first,
    /// position embeddings added.
    fn embed(&self, face: Tensor<4>) -> Tensor<3> {
        let patches = self
            .patch_embedding
            .forward(face.mul_scalar(2.0).sub_scalar(1.0));
        let [n, d, h, w] = patches.dims();
        let patches = patches.reshape([n, d, h * w]).swap_dims(1, 2);
        let class_token = self.class_token.val().expand([n, 1, d]);
        Tensor::cat(vec![class_token, patches], 1) + self.position_embedding.val()
    }

    /// ONNX form of [`VitB16::embed`]. The class token is broadcast to the batch with `Expand`
    /// to `[N, 1, 768]`, `N` read from the input's shape, since the batch size is dynamic.
    fn export_embed(&self, g: &mut OnnxGraph, face: &str) -> Result<String, ExportError> {
        let two = g.weight_f32("two", &[], &[2.0]);
        let one = g.weight_f32("one", &[], &[1.0]);
        let doubled = g.op("Mul", &[face, &two], &[]);
        let scaled = g.op("Sub", &[&doubled, &one], &[]);
        let patches = export::conv2d(g, &self.patch_embedding, &scaled)?;
        let flat_shape = g.const_i64("patch_shape", &[0, FEATURE_LEN as i64, -1]);
        let flat = g.op("Reshape", &[&patches, &flat_shape], &[]);
        let tokens = g.op("Transpose", &[&flat], &[Attr::Ints("perm", vec![0, 2, 1])]);

        let shape = g.op("Shape", &[face], &[]);
        let (zero, one_i) = (g.const_i64("zero", &[0]), g.const_i64("one", &[1]));
        let batch = g.op("Slice", &[&shape, &zero, &one_i], &[]);
        let rest = g.const_i64("token_shape", &[1, FEATURE_LEN as i64]);
        let target = g.op("Concat", &[&batch, &rest], &[Attr::Int("axis", 0)]);
        let class_token = g.weight("class_token", &self.class_token.val())?;
        let class_tokens = g.op("Expand", &[&class_token, &target], &[]);

        let all = g.op("Concat", &[&class_tokens, &tokens], &[Attr::Int("axis", 1)]);
        let position = g.weight("position_embedding", &self.position_embedding.val())?;
        Ok(g.op("Add", &[&all, &position], &[]))
    }
}

impl ArchitectureBackbone for VitB16 {
    const ARCHITECTURE: Architecture = Architecture::VitB16;
    /// The single-input detector of the reference: the class token's features, then Dense(1).
    const HEAD: HeadConfig = HeadConfig::DENSE;
    /// The multi-input ViT-B/16 of the reference: the 768 features go into the concatenation as they
    /// are, the SSIM map goes through a one-channel Baseline CNN (86,222,401 parameters).
    const MULTI: MultiConfig = MultiConfig::FEATURES;

    fn seeded(device: &Device) -> Self {
        Self::new(device)
    }
}

impl Backbone for VitB16 {
    fn feature_len(&self) -> usize {
        FEATURE_LEN
    }

    fn features(&self, face: Tensor<4>) -> Tensor<2> {
        let mut x = self.embed(face);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [n, _, d] = x.dims();
        self.norm.forward(x.narrow(1, 0, 1).reshape([n, d]))
    }

    fn export_features(&self, g: &mut OnnxGraph, face: &str) -> Result<String, ExportError> {
        let mut x = self.export_embed(g, face)?;
        for block in &self.blocks {
            x = block.export(g, &x)?;
        }
        let (zero, one) = (g.const_i64("zero", &[0]), g.const_i64("one", &[1]));
        let axis = g.const_i64("axis", &[1]);
        let class_token = g.op("Slice", &[&x, &zero, &one, &axis], &[]);
        let class_token = export::flatten(g, &class_token);
        export_layer_norm(g, &self.norm, &class_token)
    }
}
