//! SSIM between consecutive face crops. Work in progress.
