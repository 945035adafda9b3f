/*
 * PNG and JPEG through libpng and libjpeg, called the way OpenCV 4.6's imgcodecs calls them
 * (modules/imgcodecs/src/grfmt_png.cpp and grfmt_jpeg.cpp): the same library calls with the same
 * parameters give the same bytes and the same pixels. Only the parts dfd uses: 8-bit gray or
 * 3-channel images, PNG written with an explicit zlib level, baseline JPEG.
 *
 * Both libraries report errors by longjmp-ing out of the failing call, which Rust code must not
 * be jumped over; every entry point here sets its own jump target, frees what it holds and
 * returns -1 with the library's message in `error` (DFD_ERROR_LEN bytes).
 */

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#define DFD_ERROR_LEN 256

/* Appends `len` bytes to the caller's output. */
typedef void (*dfd_write_fn)(void *sink, const uint8_t *bytes, size_t len);
/* Makes room for `len` output bytes and returns where they go (NULL: no memory). */
typedef uint8_t *(*dfd_alloc_fn)(void *sink, size_t len);

/* ---------------------------------------------------------------- PNG */

struct png_output {
    dfd_write_fn write;
    void *sink;
};

static void png_write_out(png_structp png, png_bytep data, size_t len) {
    struct png_output *out = (struct png_output *)png_get_io_ptr(png);
    out->write(out->sink, data, len);
}

static void png_flush_nothing(png_structp png) { (void)png; }

static void png_fail(png_structp png, png_const_charp message) {
    char *error = (char *)png_get_error_ptr(png);
    snprintf(error, DFD_ERROR_LEN, "libpng: %s", message);
    png_longjmp(png, 1);
}

static void png_warning_ignored(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/*
 * Encodes `height` rows of `width` pixels (`channels` 1 = gray, 3 = color; color in BGR order
 * when `bgr`, else RGB), rows `stride` bytes apart, as PNG with zlib level `level` (0-9): what
 * imencode(".png", mat, {IMWRITE_PNG_COMPRESSION, level}) writes for the BGR (or gray) Mat.
 */
int dfd_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, size_t stride,
                   int channels, int bgr, int level, dfd_write_fn write, void *sink, char *error) {
    struct png_output output = {write, sink};
    png_bytep *volatile rows = NULL;
    png_structp png;
    png_infop info = NULL;
    uint32_t y;

    if ((channels != 1 && channels != 3) || level < 0 || level > 9 || width == 0 || height == 0) {
        snprintf(error, DFD_ERROR_LEN, "cannot write a %ux%u PNG of %d channels at level %d",
                 width, height, channels, level);
        return -1;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, error, png_fail, png_warning_ignored);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        snprintf(error, DFD_ERROR_LEN, "libpng: out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        return -1;
    }
    png_set_write_fn(png, &output, png_write_out, png_flush_nothing);
    /* OpenCV, when a level is given: that level and zlib's default strategy, libpng's own filter
     * choice. */
    png_set_compression_level(png, level);
    png_set_compression_strategy(png, Z_DEFAULT_STRATEGY);
    png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bgr) png_set_bgr(png);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!rows) png_error(png, "out of memory");
    for (y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * stride);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return 0;
}

/* ---------------------------------------------------------------- JPEG */

struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *error;
};

static void jpeg_fail(j_common_ptr info) {
    struct jpeg_failure *failure = (struct jpeg_failure *)info->err;
    char message[JMSG_LENGTH_MAX];
    info->err->format_message(info, message);
    snprintf(failure->error, DFD_ERROR_LEN, "libjpeg: %s", message);
    longjmp(failure->jump, 1);
}

static void jpeg_quiet(j_common_ptr info) { (void)info; }

/* libjpeg's error manager, set to jump to `failure->jump` with the message in `error` and to keep
 * warnings quiet (they are counted, as the decoder checks). The caller sets the jump. */
static struct jpeg_error_mgr *jpeg_failure_init(struct jpeg_failure *failure, char *error) {
    struct jpeg_error_mgr *manager = jpeg_std_error(&failure->manager);
    failure->manager.error_exit = jpeg_fail;
    failure->manager.output_message = jpeg_quiet;
    failure->error = error;
    return manager;
}

/* A destination that hands every full buffer to the caller's writer. */
struct jpeg_output {
    struct jpeg_destination_mgr manager;
    dfd_write_fn write;
    void *sink;
    JOCTET buffer[1 << 12];
};

static void jpeg_output_start(j_compress_ptr info) {
    struct jpeg_output *out = (struct jpeg_output *)info->dest;
    out->manager.next_output_byte = out->buffer;
    out->manager.free_in_buffer = sizeof out->buffer;
}

static boolean jpeg_output_full(j_compress_ptr info) {
    struct jpeg_output *out = (struct jpeg_output *)info->dest;
    out->write(out->sink, out->buffer, sizeof out->buffer);
    jpeg_output_start(info);
    return TRUE;
}

static void jpeg_output_end(j_compress_ptr info) {
    struct jpeg_output *out = (struct jpeg_output *)info->dest;
    out->write(out->sink, out->buffer, sizeof out->buffer - out->manager.free_in_buffer);
}

/*
 * Encodes as baseline JPEG of quality `quality` (0-100): what imencode(".jpg", mat,
 * {IMWRITE_JPEG_QUALITY, quality}) writes for the BGR (or gray) Mat. Color rows are handed to
 * libjpeg as RGB, as OpenCV does (it swaps each row itself).
 */
int dfd_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, size_t stride,
                    int channels, int bgr, int quality, dfd_write_fn write, void *sink,
                    char *error) {
    struct jpeg_compress_struct info;
    struct jpeg_failure failure;
    struct jpeg_output output;
    uint8_t *volatile row = NULL;
    uint32_t y, x;

    if ((channels != 1 && channels != 3) || quality < 0 || quality > 100 || width == 0 ||
        height == 0) {
        snprintf(error, DFD_ERROR_LEN, "cannot write a %ux%u JPEG of %d channels at quality %d",
                 width, height, channels, quality);
        return -1;
    }
    info.err = jpeg_failure_init(&failure, error);
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&info);
        free(row);
        return -1;
    }
    jpeg_create_compress(&info);
    output.manager.init_destination = jpeg_output_start;
    output.manager.empty_output_buffer = jpeg_output_full;
    output.manager.term_destination = jpeg_output_end;
    output.write = write;
    output.sink = sink;
    info.dest = &output.manager;
    info.image_width = width;
    info.image_height = height;
    info.input_components = channels;
    info.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&info);
    info.restart_interval = 0;
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    if (channels == 3) {
        row = (uint8_t *)malloc((size_t)width * 3);
        if (!row) {
            snprintf(error, DFD_ERROR_LEN, "out of memory");
            longjmp(failure.jump, 1);
        }
    }
    for (y = 0; y < height; y++) {
        const uint8_t *source = pixels + (size_t)y * stride;
        JSAMPROW line = (JSAMPROW)source;
        if (channels == 3) {
            if (bgr) {
                for (x = 0; x < width; x++) {
                    row[3 * x] = source[3 * x + 2];
                    row[3 * x + 1] = source[3 * x + 1];
                    row[3 * x + 2] = source[3 * x];
                }
            } else {
                memcpy(row, source, (size_t)width * 3);
            }
            line = row;
        }
        jpeg_write_scanlines(&info, &line, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    free(row);
    return 0;
}

/*
 * Decodes a JPEG to BGR, 3 bytes a pixel: what imdecode(bytes, IMREAD_COLOR) gives for a JPEG
 * without an EXIF orientation (libjpeg's defaults: islow DCT, fancy upsampling; gray expanded to
 * three equal channels). The pixels go where `alloc` says, once the size is known. Unlike
 * imdecode, damaged data (which libjpeg only warns about) is an error.
 */
int dfd_jpeg_decode_bgr(const uint8_t *bytes, size_t len, dfd_alloc_fn alloc, void *sink,
                        uint32_t *width, uint32_t *height, char *error) {
    struct jpeg_decompress_struct info;
    struct jpeg_failure failure;
    uint8_t *pixels;
    size_t row_len;
    uint32_t x;

    info.err = jpeg_failure_init(&failure, error);
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, bytes, (unsigned long)len);
    jpeg_read_header(&info, TRUE);
    if (info.num_components == 4) {
        snprintf(error, DFD_ERROR_LEN, "CMYK JPEG is not supported");
        longjmp(failure.jump, 1);
    }
    info.out_color_space = JCS_RGB;
    info.out_color_components = 3;
    jpeg_start_decompress(&info);
    row_len = (size_t)info.output_width * 3;
    pixels = alloc(sink, row_len * info.output_height);
    if (!pixels) {
        snprintf(error, DFD_ERROR_LEN, "out of memory for a %ux%u image", info.output_width,
                 info.output_height);
        longjmp(failure.jump, 1);
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW line = pixels + row_len * info.output_scanline;
        jpeg_read_scanlines(&info, &line, 1);
        for (x = 0; x < info.output_width; x++) {
            uint8_t red = line[3 * x];
            line[3 * x] = line[3 * x + 2];
            line[3 * x + 2] = red;
        }
    }
    jpeg_finish_decompress(&info);
    /* libjpeg warns about damaged data (a premature end, a corrupt segment) and fills in the
     * rest; imdecode then returns the filled-in image. A damaged stored frame is an error here. */
    if (failure.manager.num_warnings > 0) {
        char message[JMSG_LENGTH_MAX];
        failure.manager.format_message((j_common_ptr)&info, message);
        snprintf(error, DFD_ERROR_LEN, "libjpeg: damaged image: %s", message);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    *width = info.output_width;
    *height = info.output_height;
    jpeg_destroy_decompress(&info);
    return 0;
}
