//! The three stages on one frame: P-Net over the pyramid, then R-Net and O-Net, each batched over
//! all of the frame's candidates (one `Session::run` per stage).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::boxes::{self, Candidate, Overlap};
use super::crop::crop_batch;
use super::frame::Frame;
use super::networks::{Networks, Pnet, PnetOutput};
use super::pyramid::{self, PNET_WINDOW};
use super::{DetectError, Face, MtcnnParams};

/// The full cascade on `frame`, with the pyramid built for `min_face_size` pixels.
pub fn run(
    networks: &mut Networks,
    params: &MtcnnParams,
    frame: Frame,
    min_face_size: f64,
) -> Result<Vec<Face>, DetectError> {
    let candidates = stage1(networks, params, frame, min_face_size)?;
    let candidates = stage2(networks, params, frame, candidates)?;
    stage3(networks, params, frame, candidates)
}

/// P-Net on every level, NMS per level and across levels, regression, squaring.
fn stage1(
    networks: &mut Networks,
    params: &MtcnnParams,
    frame: Frame,
    min_face_size: f64,
) -> Result<Vec<Candidate>, DetectError> {
    let scales = pyramid::scales(
        frame.height,
        frame.width,
        min_face_size,
        params.scale_factor,
    );
    let all: Vec<Candidate> = scan_pyramid(networks.pnets(), params, frame, &scales)?
        .into_iter()
        .flatten()
        .collect();
    let keep = boxes::nms(&all, params.nms_across_scales, Overlap::Union);
    Ok(keep
        .into_iter()
        .map(|i| {
            let mut b = all[i];
            boxes::apply_pnet_regression(&mut b);
            boxes::square(&mut b);
            boxes::truncate(&mut b);
            b
        })
        .collect())
}

/// Each level's windows after the per-level NMS, in level order.
///
/// Every P-Net session is a worker on its own thread that takes the next level (largest first),
/// resizes it and scans it. Measured on 2 cores, this takes a quarter less time than one session
/// with 2 intra-op threads: P-Net's convolutions are too small to split well, and the resizing runs
/// in parallel too instead of ahead of the scans. Levels are independent, so the result does not
/// depend on which worker took which.
fn scan_pyramid(
    pnets: &mut [Pnet],
    params: &MtcnnParams,
    frame: Frame,
    scales: &[f64],
) -> Result<Vec<Vec<Candidate>>, DetectError> {
    let workers = pnets.len().min(scales.len());
    let Some((first, rest)) = pnets[..workers].split_first_mut() else {
        return Ok(Vec::new());
    };
    let next = AtomicUsize::new(0);
    let scan_level = |pnet: &mut Pnet, scale: f64| {
        let input = pyramid::pnet_input(frame, scale)?;
        let out = pnet.run(input.view())?;
        let found = windows(&out, scale, params.thresholds[0]);
        let keep = boxes::nms(&found, params.nms_per_scale, Overlap::Union);
        Ok(keep.into_iter().map(|k| found[k]).collect::<Vec<_>>())
    };
    let scan = |pnet: &mut Pnet| {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&scale) = scales.get(i) else {
                return done;
            };
            done.push((i, scan_level(pnet, scale)));
        }
    };
    let mut results: Vec<(usize, Result<Vec<Candidate>, DetectError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = rest.iter_mut().map(|pnet| s.spawn(|| scan(pnet))).collect();
        let mut results = scan(first);
        for handle in handles {
            match handle.join() {
                Ok(more) => results.extend(more),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_by_key(|&(i, _)| i);
    results.into_iter().map(|(_, found)| found).collect()
}

/// R-Net on all of stage 1's boxes in one batch.
fn stage2(
    networks: &mut Networks,
    params: &MtcnnParams,
    frame: Frame,
    candidates: Vec<Candidate>,
) -> Result<Vec<Candidate>, DetectError> {
    let candidates = croppable(frame, candidates);
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let batch = crop_batch(frame, &candidates, 24, networks.threads())?;
    let out = networks.rnet(batch.view())?;
    let passed: Vec<Candidate> = candidates
        .iter()
        .enumerate()
        .filter(|&(k, _)| out.probability[k] > params.thresholds[1])
        .map(|(k, b)| Candidate {
            score: f64::from(out.probability[k]),
            reg: regression(out.regression.row(k)),
            ..*b
        })
        .collect();
    let keep = boxes::nms(&passed, params.nms_rnet, Overlap::Union);
    Ok(keep
        .into_iter()
        .map(|i| {
            let mut b = passed[i];
            boxes::apply_regression(&mut b);
            boxes::square(&mut b);
            b
        })
        .collect())
}

/// O-Net on all of stage 2's boxes in one batch; landmarks, final regression and suppression.
fn stage3(
    networks: &mut Networks,
    params: &MtcnnParams,
    frame: Frame,
    mut candidates: Vec<Candidate>,
) -> Result<Vec<Face>, DetectError> {
    candidates.iter_mut().for_each(boxes::truncate);
    let candidates = croppable(frame, candidates);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let batch = crop_batch(frame, &candidates, 48, networks.threads())?;
    let out = networks.onet(batch.view())?;
    let mut passed = Vec::new();
    let mut landmarks = Vec::new();
    for (k, b) in candidates.iter().enumerate() {
        if out.probability[k] <= params.thresholds[2] {
            continue;
        }
        // Landmarks are fractions of the inclusive box size, offset by the 1-based shift.
        let (w, h) = (b.x2 - b.x1 + 1.0, b.y2 - b.y1 + 1.0);
        let row = out.landmarks.row(k);
        let mut points = [[0f32; 2]; 5];
        for (i, p) in points.iter_mut().enumerate() {
            p[0] = (w * f64::from(row[i]) + b.x1 - 1.0) as f32;
            p[1] = (h * f64::from(row[i + 5]) + b.y1 - 1.0) as f32;
        }
        let mut b = Candidate {
            score: f64::from(out.probability[k]),
            reg: regression(out.regression.row(k)),
            ..*b
        };
        boxes::apply_regression(&mut b);
        passed.push(b);
        landmarks.push(points);
    }
    let keep = boxes::nms(&passed, params.nms_onet, Overlap::Min);
    Ok(keep
        .into_iter()
        .map(|i| {
            let b = &passed[i];
            let (x, y) = (b.x1.max(0.0), b.y1.max(0.0));
            Face {
                x: x as f32,
                y: y as f32,
                width: (b.x2 - x) as f32,
                height: (b.y2 - y) as f32,
                confidence: b.score as f32,
                landmarks: landmarks[i],
            }
        })
        .collect())
}

/// P-Net's windows at or above `threshold` on one level, in the frame's pixels, regression not yet
/// applied. Window `(x, y)` of the output grid covers `[2x + 1, 2y + 1] .. [2x + 12, 2y + 12]` of
/// the level, mapped back by `1 / scale` and truncated. The grid is x-major (transposed input).
fn windows(out: &PnetOutput, scale: f64, threshold: f32) -> Vec<Candidate> {
    let grid_w = out.probability.nrows();
    let found: Vec<(usize, usize, f32)> = out
        .probability
        .indexed_iter()
        .filter(|&(_, &score)| score >= threshold)
        .map(|((x, y), &score)| (x, y, score))
        .collect();
    // The reference flips the regression maps along x when a level yields exactly one window
    // (`np.flipud` meant for a differently shaped array); kept so that the boxes match it.
    let flip = found.len() == 1;
    found
        .into_iter()
        .map(|(x, y, score)| {
            let rx = if flip { grid_w - 1 - x } else { x };
            let r = |k: usize| f64::from(out.regression[[0, rx, y, k]]);
            let corner = |i: usize, offset: f64| (((2 * i) as f64 + offset) / scale).trunc();
            Candidate {
                x1: corner(x, 1.0),
                y1: corner(y, 1.0),
                x2: corner(x, PNET_WINDOW),
                y2: corner(y, PNET_WINDOW),
                score: f64::from(score),
                reg: [r(0), r(1), r(2), r(3)],
            }
        })
        .collect()
}

fn regression(row: ndarray::ArrayView1<f32>) -> [f64; 4] {
    [row[0], row[1], row[2], row[3]].map(f64::from)
}

/// Drops boxes that cannot be cropped: an empty or inverted box (the reference would abort the whole
/// frame on one), or one so large that its zero-padded crop would be an absurd allocation.
fn croppable(frame: Frame, candidates: Vec<Candidate>) -> Vec<Candidate> {
    let limit = 4.0 * frame.height.max(frame.width) as f64;
    candidates
        .into_iter()
        .filter(|b| {
            let (w, h) = (b.x2 - b.x1 + 1.0, b.y2 - b.y1 + 1.0);
            w >= 1.0 && h >= 1.0 && w <= limit && h <= limit
        })
        .collect()
}
