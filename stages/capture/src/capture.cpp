// OpenCV's VideoCapture behind a C interface, built as a shared library that dfd opens only when a
// video needs it (see lib.rs). Every call catches what OpenCV throws and returns it as text:
// a C++ exception must not cross into Rust.

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <cstdio>
#include <exception>

namespace {

struct Capture {
    cv::VideoCapture capture;
    cv::Mat frame;
};

// Runs `body`, turning an exception into `error` (of `error_len` bytes) and -1.
template <typename Body>
int guarded(char *error, size_t error_len, Body body) {
    try {
        return body();
    } catch (const cv::Exception &e) {
        std::snprintf(error, error_len, "%s", e.what());
    } catch (const std::exception &e) {
        std::snprintf(error, error_len, "%s", e.what());
    } catch (...) {
        std::snprintf(error, error_len, "unknown C++ exception");
    }
    return -1;
}

}  // namespace

extern "C" {

// Opens `path` with the FFmpeg backend (what VideoCapture(path, CAP_FFMPEG) does). 1: opened, with
// the handle in `out`; 0: no backend accepted the file; -1: OpenCV threw (`error`).
int dfd_capture_open(const char *path, void **out, char *error, size_t error_len) {
    *out = nullptr;
    return guarded(error, error_len, [&]() {
        Capture *capture = new Capture();
        if (!capture->capture.open(path, cv::CAP_FFMPEG) || !capture->capture.isOpened()) {
            delete capture;
            return 0;
        }
        *out = capture;
        return 1;
    });
}

// VideoCapture::grab: 1 a frame, 0 the end, -1 an error.
int dfd_capture_grab(void *handle, char *error, size_t error_len) {
    Capture *capture = static_cast<Capture *>(handle);
    return guarded(error, error_len, [&]() { return capture->capture.grab() ? 1 : 0; });
}

// VideoCapture::retrieve of the grabbed frame into the handle's own Mat, described through the out
// parameters (valid until the next retrieve or close). 1 a frame, 0 none, -1 an error.
int dfd_capture_retrieve(void *handle, const unsigned char **data, int *rows, int *cols, int *type,
                         size_t *step, size_t *row_bytes, char *error, size_t error_len) {
    Capture *capture = static_cast<Capture *>(handle);
    return guarded(error, error_len, [&]() {
        if (!capture->capture.retrieve(capture->frame) || capture->frame.empty()) return 0;
        *data = capture->frame.data;
        *rows = capture->frame.rows;
        *cols = capture->frame.cols;
        *type = capture->frame.type();
        *step = capture->frame.step[0];
        *row_bytes = capture->frame.cols * capture->frame.elemSize();
        return 1;
    });
}

// VideoCapture::get(property) into `value`. 0 done, -1 an error.
int dfd_capture_get(void *handle, int property, double *value, char *error, size_t error_len) {
    Capture *capture = static_cast<Capture *>(handle);
    return guarded(error, error_len, [&]() {
        *value = capture->capture.get(property);
        return 0;
    });
}

void dfd_capture_close(void *handle) {
    try {
        delete static_cast<Capture *>(handle);
    } catch (...) {
    }
}

}  // extern "C"
