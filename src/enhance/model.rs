//! Learned super-resolution from a TensorFlow.js layers model, run on the CPU in plain Rust.
//!
//! The interpreter covers the layers of the RDN networks of `@upscalerjs/esrgan-slim` 1.0.0
//! (MIT): `Conv2D` (stride 1, `same` or `valid` padding, linear or ReLU activation),
//! `Activation`, `Concatenate` on channels, `Add` and nearest-neighbour `UpSampling2D`. A model
//! with any other layer is rejected when it is loaded. Input and output are RGB on a 0–255
//! scale, as those models expect. Each layer runs on one thread in a fixed order of
//! arithmetic, so the same input gives the same output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("reading the model file {path} failed: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a TensorFlow.js layers model: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error(
        "layer {layer} of {path} is a {class}, which this interpreter does not run: use a model made of Conv2D, Activation, Concatenate, Add and UpSampling2D layers"
    )]
    Unsupported {
        path: PathBuf,
        layer: String,
        class: String,
    },
}

/// An image or feature map: `height` x `width` pixels of `channels` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Vec<f32>,
}

/// Weight arrays by name, each with its shape.
type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

#[derive(Debug)]
enum Operation {
    Input,
    Conv {
        /// Height, width, input channels, output channels (TensorFlow's HWIO order).
        kernel: Vec<f32>,
        shape: [usize; 4],
        bias: Vec<f32>,
        same: bool,
        relu: bool,
    },
    Relu,
    Concatenate,
    Add,
    Upsample(usize),
}

#[derive(Debug)]
struct Node {
    name: String,
    inputs: Vec<String>,
    operation: Operation,
}

/// A loaded super-resolution network.
#[derive(Debug)]
pub struct SuperResolution {
    path: PathBuf,
    nodes: Vec<Node>,
    scale: usize,
}

impl SuperResolution {
    /// Loads `model.json` and the weight files it lists from the same folder.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let format = |reason: &str| ModelError::Format {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json: Value =
            serde_json::from_str(&text).map_err(|error| format(&error.to_string()))?;
        let mut weights = read_weights(path, &json)?;
        let layers = json
            .pointer("/modelTopology/model_config/config/layers")
            .or_else(|| json.pointer("/modelTopology/config/layers"))
            .and_then(Value::as_array)
            .ok_or_else(|| format("no modelTopology layers"))?;

        let mut nodes = Vec::with_capacity(layers.len());
        let mut scale = 1;
        for layer in layers {
            let class = layer["class_name"].as_str().unwrap_or_default();
            let config = &layer["config"];
            let name = config["name"].as_str().unwrap_or_default().to_owned();
            let inputs = inbound_names(layer);
            let operation = match class {
                "InputLayer" => Operation::Input,
                "Conv2D" => conv_operation(path, &name, config, &mut weights)?,
                "Activation" if config["activation"] == "relu" => Operation::Relu,
                "Concatenate" => Operation::Concatenate,
                "Add" => Operation::Add,
                "UpSampling2D" if config["interpolation"] == "nearest" => {
                    let size = config["size"][0].as_u64().unwrap_or(0) as usize;
                    if size == 0 || config["size"][1].as_u64() != Some(size as u64) {
                        return Err(format("UpSampling2D with unequal or missing sizes"));
                    }
                    scale *= size;
                    Operation::Upsample(size)
                }
                _ => {
                    return Err(ModelError::Unsupported {
                        path: path.to_owned(),
                        layer: name,
                        class: class.to_owned(),
                    });
                }
            };
            nodes.push(Node {
                name,
                inputs,
                operation,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            nodes,
            scale,
        })
    }

    /// Returns the enlargement factor of the network.
    pub fn scale(&self) -> usize {
        self.scale
    }

    /// Returns the name that enhanced tiles report: the model file's two parent folders (for
    /// example `esrgan-slim/x2`), in ASCII letters, digits, `-`, `_`, `.` and `/`.
    pub fn name(&self) -> String {
        let folders: Vec<String> = self
            .path
            .parent()
            .into_iter()
            .flat_map(Path::components)
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        let start = folders.len().saturating_sub(2);
        folders[start..]
            .join("/")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_./".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// Returns how many input pixels the network reads on each side of a pixel, at most: the
    /// sum of the half-widths of its convolutions.
    pub fn receptive_radius(&self) -> usize {
        self.nodes
            .iter()
            .map(|node| match &node.operation {
                Operation::Conv { shape, .. } => shape[0].max(shape[1]) / 2,
                _ => 0,
            })
            .sum()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs the network on an RGB tensor of 0–255 values and returns the enlarged RGB tensor,
    /// clamped to 0–255.
    pub fn run(&self, input: &Tensor) -> Tensor {
        let mut values: HashMap<&str, Tensor> = HashMap::new();
        let mut last = "";
        for node in &self.nodes {
            let argument = |index: usize| -> &Tensor { &values[node.inputs[index].as_str()] };
            let output = match &node.operation {
                Operation::Input => input.clone(),
                Operation::Conv {
                    kernel,
                    shape,
                    bias,
                    same,
                    relu,
                } => conv2d(argument(0), kernel, *shape, bias, *same, *relu),
                Operation::Relu => {
                    let mut tensor = argument(0).clone();
                    for value in &mut tensor.data {
                        *value = value.max(0.0);
                    }
                    tensor
                }
                Operation::Concatenate => {
                    let parts: Vec<&Tensor> = (0..node.inputs.len()).map(argument).collect();
                    concatenate(&parts)
                }
                Operation::Add => {
                    let mut tensor = argument(0).clone();
                    for index in 1..node.inputs.len() {
                        for (value, other) in tensor.data.iter_mut().zip(&argument(index).data) {
                            *value += other;
                        }
                    }
                    tensor
                }
                Operation::Upsample(size) => upsample(argument(0), *size),
            };
            values.insert(node.name.as_str(), output);
            last = node.name.as_str();
        }
        let mut output = values.remove(last).expect("the last layer has run");
        for value in &mut output.data {
            *value = value.clamp(0.0, 255.0);
        }
        output
    }
}

/// Returns the names of the layers that feed `layer`.
fn inbound_names(layer: &Value) -> Vec<String> {
    layer["inbound_nodes"]
        .get(0)
        .and_then(Value::as_array)
        .map(|inbound| {
            inbound
                .iter()
                .filter_map(|entry| entry.get(0).and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn conv_operation(
    path: &Path,
    name: &str,
    config: &Value,
    weights: &mut Weights,
) -> Result<Operation, ModelError> {
    let format = |reason: String| ModelError::Format {
        path: path.to_owned(),
        reason,
    };
    let ones = serde_json::json!([1, 1]);
    if config["strides"] != ones || config["dilation_rate"] != ones {
        return Err(format(format!(
            "Conv2D {name} has strides or dilation other than 1"
        )));
    }
    let relu = match config["activation"].as_str() {
        Some("linear") => false,
        Some("relu") => true,
        other => return Err(format(format!("Conv2D {name} has activation {other:?}"))),
    };
    let same = config["padding"] == "same";
    let (shape, kernel) = weights
        .remove(&format!("{name}/kernel"))
        .ok_or_else(|| format(format!("no weights for {name}/kernel")))?;
    let shape: [usize; 4] = shape
        .try_into()
        .map_err(|_| format(format!("{name}/kernel is not four-dimensional")))?;
    if same && (shape[0].is_multiple_of(2) || shape[1].is_multiple_of(2)) {
        return Err(format(format!(
            "Conv2D {name} has an even kernel with same padding"
        )));
    }
    let bias = match weights.remove(&format!("{name}/bias")) {
        Some((_, bias)) if bias.len() == shape[3] => bias,
        Some(_) => return Err(format(format!("{name}/bias does not match its kernel"))),
        None => vec![0.0; shape[3]],
    };
    Ok(Operation::Conv {
        kernel,
        shape,
        bias,
        same,
        relu,
    })
}

/// Reads the float32 weights of every group of the manifest, by name, with their shapes.
fn read_weights(path: &Path, json: &Value) -> Result<Weights, ModelError> {
    let format = |reason: String| ModelError::Format {
        path: path.to_owned(),
        reason,
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let groups = json["weightsManifest"]
        .as_array()
        .ok_or_else(|| format("no weightsManifest".to_owned()))?;
    let mut weights = HashMap::new();
    for group in groups {
        let mut bytes = Vec::new();
        for file in group["paths"].as_array().into_iter().flatten() {
            let file = folder.join(file.as_str().unwrap_or_default());
            let mut part = std::fs::read(&file).map_err(|source| ModelError::Read {
                path: file.clone(),
                source,
            })?;
            bytes.append(&mut part);
        }
        let mut offset = 0;
        for entry in group["weights"].as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or_default().to_owned();
            if entry["dtype"] != "float32" {
                return Err(format(format!("weight {name} is not float32")));
            }
            let shape: Vec<usize> = entry["shape"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .map(|n| n as usize)
                .collect();
            let count: usize = shape.iter().product();
            let end = offset + count * 4;
            let chunk = bytes
                .get(offset..end)
                .ok_or_else(|| format(format!("the weight files end before {name}")))?;
            let values = chunk
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            weights.insert(name, (shape, values));
            offset = end;
        }
    }
    Ok(weights)
}

/// Convolves with a kernel of `shape` (height, width, inputs, outputs) at stride 1. `same`
/// pads with zeros to keep the size; otherwise only whole windows are computed.
fn conv2d(
    input: &Tensor,
    kernel: &[f32],
    shape: [usize; 4],
    bias: &[f32],
    same: bool,
    relu: bool,
) -> Tensor {
    let [kernel_height, kernel_width, inputs, outputs] = shape;
    assert_eq!(
        input.channels, inputs,
        "the layer's input has the kernel's channels"
    );
    let (pad_y, pad_x) = if same {
        (kernel_height / 2, kernel_width / 2)
    } else {
        (0, 0)
    };
    let height = input.height + 2 * pad_y + 1 - kernel_height;
    let width = input.width + 2 * pad_x + 1 - kernel_width;
    let mut data = vec![0_f32; height * width * outputs];
    for y in 0..height {
        for x in 0..width {
            let out = &mut data[(y * width + x) * outputs..(y * width + x + 1) * outputs];
            out.copy_from_slice(bias);
            for ky in 0..kernel_height {
                let Some(source_y) = (y + ky).checked_sub(pad_y).filter(|&v| v < input.height)
                else {
                    continue;
                };
                for kx in 0..kernel_width {
                    let Some(source_x) = (x + kx).checked_sub(pad_x).filter(|&v| v < input.width)
                    else {
                        continue;
                    };
                    let at = (source_y * input.width + source_x) * inputs;
                    let pixel = &input.data[at..at + inputs];
                    let taps = &kernel[(ky * kernel_width + kx) * inputs * outputs..];
                    for (channel, &value) in pixel.iter().enumerate() {
                        let weights = &taps[channel * outputs..(channel + 1) * outputs];
                        for (sum, &weight) in out.iter_mut().zip(weights) {
                            *sum += value * weight;
                        }
                    }
                }
            }
            if relu {
                for value in out.iter_mut() {
                    *value = value.max(0.0);
                }
            }
        }
    }
    Tensor {
        height,
        width,
        channels: outputs,
        data,
    }
}

fn concatenate(parts: &[&Tensor]) -> Tensor {
    let (height, width) = (parts[0].height, parts[0].width);
    let channels: usize = parts.iter().map(|part| part.channels).sum();
    let mut data = Vec::with_capacity(height * width * channels);
    for i in 0..height * width {
        for part in parts {
            data.extend_from_slice(&part.data[i * part.channels..(i + 1) * part.channels]);
        }
    }
    Tensor {
        height,
        width,
        channels,
        data,
    }
}

fn upsample(input: &Tensor, size: usize) -> Tensor {
    let (height, width, channels) = (input.height * size, input.width * size, input.channels);
    let mut data = Vec::with_capacity(height * width * channels);
    for y in 0..height {
        for x in 0..width {
            let at = ((y / size) * input.width + x / size) * channels;
            data.extend_from_slice(&input.data[at..at + channels]);
        }
    }
    Tensor {
        height,
        width,
        channels,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(height: usize, width: usize, channels: usize, data: Vec<f32>) -> Tensor {
        Tensor {
            height,
            width,
            channels,
            data,
        }
    }

    #[test]
    fn same_convolution_pads_with_zeros() {
        // A 3x3 box sum over one channel of ones: corners see 4, edges 6, the centre 9.
        let input = tensor(3, 3, 1, vec![1.0; 9]);
        let out = conv2d(&input, &[1.0; 9], [3, 3, 1, 1], &[0.5], true, false);
        assert_eq!((out.height, out.width), (3, 3));
        assert_eq!(out.data, vec![4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);
    }

    #[test]
    fn convolution_mixes_channels_in_hwio_order() {
        // A 1x1 kernel from two channels to two: out0 = a + 2b, out1 = 3a + 4b, then ReLU.
        let input = tensor(1, 2, 2, vec![1.0, 1.0, -5.0, 1.0]);
        let kernel = [1.0, 3.0, 2.0, 4.0];
        let out = conv2d(&input, &kernel, [1, 1, 2, 2], &[0.0, 0.0], false, true);
        assert_eq!(out.data, vec![3.0, 7.0, 0.0, 0.0]);
    }

    #[test]
    fn upsampling_repeats_pixels() {
        let input = tensor(1, 2, 1, vec![1.0, 2.0]);
        let out = upsample(&input, 2);
        assert_eq!((out.height, out.width), (2, 4));
        assert_eq!(out.data, vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn concatenation_interleaves_channels() {
        let a = tensor(1, 2, 1, vec![1.0, 2.0]);
        let b = tensor(1, 2, 2, vec![3.0, 4.0, 5.0, 6.0]);
        let out = concatenate(&[&a, &b]);
        assert_eq!(out.channels, 3);
        assert_eq!(out.data, vec![1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn tiny_model_loads_and_runs() {
        let folder = tempfile::tempdir().expect("tempdir");
        let model = serde_json::json!({
            "format": "layers-model",
            "modelTopology": {"model_config": {"config": {"layers": [
                {"class_name": "InputLayer", "config": {"name": "LR"}, "inbound_nodes": []},
                {"class_name": "Conv2D", "config": {"name": "C", "strides": [1, 1],
                  "dilation_rate": [1, 1], "activation": "linear", "padding": "same",
                  "kernel_size": [1, 1], "filters": 3},
                 "inbound_nodes": [[["LR", 0, 0, {}]]]},
                {"class_name": "UpSampling2D", "config": {"name": "U", "size": [2, 2],
                  "interpolation": "nearest"}, "inbound_nodes": [[["C", 0, 0, {}]]]},
                {"class_name": "Add", "config": {"name": "A"},
                 "inbound_nodes": [[["U", 0, 0, {}], ["U", 0, 0, {}]]]}
            ]}}},
            "weightsManifest": [{"paths": ["w.bin"], "weights": [
                {"name": "C/kernel", "shape": [1, 1, 3, 3], "dtype": "float32"},
                {"name": "C/bias", "shape": [3], "dtype": "float32"}
            ]}]
        });

        // An identity kernel and a bias of 1.
        let values: [f32; 12] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(folder.path().join("w.bin"), bytes).expect("write weights");
        let path = folder.path().join("model.json");
        std::fs::write(&path, model.to_string()).expect("write model");

        let network = SuperResolution::load(&path).expect("load");
        assert_eq!(network.scale(), 2);
        let out = network.run(&tensor(1, 1, 3, vec![10.0, 20.0, 200.0]));
        assert_eq!((out.height, out.width, out.channels), (2, 2, 3));
        assert_eq!(out.data[..3], [22.0, 42.0, 255.0], "(x + 1) * 2, clamped");
    }

    #[test]
    fn unknown_layer_is_rejected() {
        let folder = tempfile::tempdir().expect("tempdir");
        let model = serde_json::json!({
            "modelTopology": {"config": {"layers": [
                {"class_name": "Dense", "config": {"name": "D"}, "inbound_nodes": []}
            ]}},
            "weightsManifest": []
        });
        let path = folder.path().join("model.json");
        std::fs::write(&path, model.to_string()).expect("write model");
        let error = SuperResolution::load(&path).expect_err("Dense is not supported");
        assert!(error.to_string().contains("Dense"), "{error}");
    }
}
