"""Rasterise the game's head mesh with moderngl on EGL: per-vertex colour, smooth normals, MSAA.

Two backends share one shading model (game.shading) and one output convention:
- `MeshRenderer` (here): moderngl on EGL (Mesa llvmpipe on a CPU, the vendor driver on a GPU); numpy in,
  uint8 RGBA out. The GL context is made lazily, on the first render in each process.
- `NvdiffrastRenderer` (game.render_nvdiffrast): nvdiffrast on CUDA; torch in, differentiable float RGBA out.

Output of both: (S, S, 4), top-left origin (row 0 is the top of the image), RGB already composited over
`background`, alpha = coverage (the MSAA / antialiasing fraction at silhouettes).
Engine v2's per-pixel detail (a per-vertex `material` and texture coordinates into game.detail's texture:
skin grain and softer skin light, stubble stipple, hair streaks) is MeshRenderer's only; without a material
(or with zeros) MeshRenderer draws exactly the shared v1 model, which is all NvdiffrastRenderer draws.

Processes and threads: each thread of each process makes its own context on its first render (an EGL context is
current in the thread that made it; a thread-local keyed by os.getpid(), so a renderer pickled into a worker, or
inherited through fork, rebuilds its GL objects there). A renderer's GL objects belong to the context of the thread
that made them: used from another thread, it makes them anew there. Render from one thread where you can (the web
app runs every render on one thread of its own, eval/creator.py): each thread costs a context.
Fork safety: an EGL context made in a parent before fork() hangs llvmpipe in the children (its worker
threads hold locks), even after the context is released. The first render in a process therefore sets
`LP_NUM_THREADS=0` unless the caller set it: llvmpipe then rasterises in the calling thread (parallelism
comes from worker processes) and forked children render fine (tests/test_render.py checks it). Not tested
with a vendor EGL driver: on a GPU machine, make renderers inside workers or use the `spawn` start method.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.util
import os
import threading
import time

import cv2
import numpy as np

from game.camera import camera_position
from game.shading import DEFAULT_BACKGROUND, Lighting, vertex_incidence, vertex_normals


def render_backends() -> list[str]:
    """The render backends usable here, without making a GL context: "moderngl" (EGL) and/or "nvdiffrast" (CUDA)."""
    backends = []
    try:
        import glcontext  # noqa: F401
        import moderngl  # noqa: F401

        if ctypes.util.find_library("EGL"):
            backends.append("moderngl")
    except ImportError:
        pass
    if importlib.util.find_spec("nvdiffrast") is not None:  # before importing torch, which takes seconds
        try:
            import nvdiffrast.torch  # noqa: F401
            import torch

            if torch.cuda.is_available():
                backends.append("nvdiffrast")
        except ImportError:
            pass
    return backends


# --------------------------------------------------------------------------- moderngl (EGL) backend

_VERTEX_SHADER = """
#version 330
uniform mat4 view_proj;
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
in float in_gloss;
in vec2 in_uv;
in vec2 in_material;
out vec3 v_position;
out vec3 v_normal;
out vec3 v_color;
out float v_gloss;
out vec2 v_uv;
out vec2 v_material;
void main() {
    v_position = in_position;
    v_normal = in_normal;
    v_color = in_color;
    v_gloss = in_gloss;
    v_uv = in_uv;
    v_material = in_material;
    gl_Position = view_proj * vec4(in_position, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec4 eye;  // homogeneous camera centre: (x, y, z, 1), or (direction, 0) for an orthographic camera
uniform vec3 key_direction;
uniform vec3 key_color;
uniform vec3 fill_direction;
uniform vec3 fill_color;
uniform vec3 ambient;
uniform float specular;
uniform float shininess;
uniform sampler2D detail;  // game.detail: R grain, G blotches, B stipple, A streaks
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;
in float v_gloss;
in vec2 v_uv;
in vec2 v_material;  // packed (MeshRenderer.render): skin + stipple, streak - extra grain
out vec4 f_color;
void main() {
    vec3 n = v_normal * inversesqrt(max(dot(v_normal, v_normal), 1e-20));
    if (!gl_FrontFacing) n = -n;
    vec3 to_eye = eye.xyz - v_position * eye.w;
    vec3 view = to_eye * inversesqrt(max(dot(to_eye, to_eye), 1e-20));
    vec4 tex = texture(detail, v_uv);
    float skin = min(v_material.x, 1.0);
    float stipple = v_material.x - skin;
    float grain = skin + max(-v_material.y, 0.0);
    float streak = max(v_material.y, 0.0) * (tex.a - 0.5);
    vec3 albedo = v_color * (1.0 + grain * (0.10 * (tex.r - 0.5) + 0.07 * (tex.g - 0.5)) + 0.9 * streak);
    albedo *= 1.0 - stipple * 0.7 * clamp(2.5 * tex.b - 0.875, 0.0, 1.0);  // dots where B > 0.35
    float wrap = 0.4 * skin;  // light wraps round skin (scattering under it); 0 = Lambert
    float unwrap = 1.0 / (1.0 + wrap);
    float nk_raw = dot(n, key_direction);
    float nk = max(nk_raw, 0.0);
    float nk_soft = max((nk_raw + wrap) * unwrap, 0.0);
    float nf = max((dot(n, fill_direction) + wrap) * unwrap, 0.0);
    vec3 scatter = 1.0 - (0.6 * skin * (1.0 - nk)) * vec3(0.0, 0.28, 0.38);  // redder where it turns away
    vec3 h = normalize(key_direction + view);
    float lobe = shininess * (1.0 - 0.5 * skin);  // a broader, weaker highlight on skin
    float shine = specular * v_gloss * (1.0 - 0.35 * skin) * (1.0 + 1.4 * streak);
    float spec = nk > 0.0 ? shine * pow(max(dot(n, h), 0.0), lobe) : 0.0;
    vec3 rgb = albedo * (ambient + key_color * nk_soft * scatter + fill_color * nf) + key_color * spec;
    f_color = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
"""

# The shared v1 model alone (game.shading), as NvdiffrastRenderer draws it: for measuring what the detail costs.
_PLAIN_FRAGMENT_SHADER = """
#version 330
uniform vec4 eye;
uniform vec3 key_direction;
uniform vec3 key_color;
uniform vec3 fill_direction;
uniform vec3 fill_color;
uniform vec3 ambient;
uniform float specular;
uniform float shininess;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;
in float v_gloss;
out vec4 f_color;
void main() {
    vec3 n = v_normal * inversesqrt(max(dot(v_normal, v_normal), 1e-20));
    if (!gl_FrontFacing) n = -n;
    vec3 to_eye = eye.xyz - v_position * eye.w;
    vec3 view = to_eye * inversesqrt(max(dot(to_eye, to_eye), 1e-20));
    float nk = max(dot(n, key_direction), 0.0);
    float nf = max(dot(n, fill_direction), 0.0);
    vec3 h = normalize(key_direction + view);
    float spec = nk > 0.0 ? specular * v_gloss * pow(max(dot(n, h), 0.0), shininess) : 0.0;
    vec3 rgb = v_color * (ambient + key_color * nk + fill_color * nf) + key_color * spec;
    f_color = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
"""

_FLOATS_PER_VERTEX = 14  # position 3, normal 3, colour 3, gloss 1, uv 2, material 2 (packed)
_FLAT_DETAIL = np.array([128, 128, 0, 128], np.uint8)  # a detail texel that changes nothing
_THREAD_GL = threading.local()  # this thread's EGL context: .made = (pid, ctx, {detail_shading: program})


def _load_llvm_users_first() -> None:
    """Import triton (torch's GPU compiler, loaded by some libraries on import) before Mesa starts.

    Both bundle LLVM; loading triton after llvmpipe's EGL context exists segfaults the process, while
    the other order is fine. Importing it here makes the order safe whatever the caller imports later.
    """
    with contextlib.suppress(ImportError):
        import triton  # noqa: F401


def _thread_context(create: bool = True, detail_shading: bool = True):
    """This thread's moderngl context and shader program (the detail or the plain one), made on first use (never
    inherited across fork); with `create` False, (None, None) when this thread has none."""
    pid = os.getpid()
    made = getattr(_THREAD_GL, "made", None)
    if made is None or made[0] != pid:
        if not create:
            return None, None
        import moderngl

        _load_llvm_users_first()
        os.environ.setdefault("LP_NUM_THREADS", "0")  # see the module docstring: keeps fork() usable
        ctx = moderngl.create_standalone_context(backend="egl", require=330)
        _THREAD_GL.made = made = (pid, ctx, {})
    ctx, programs = made[1], made[2]
    if detail_shading not in programs:
        fragment = _FRAGMENT_SHADER if detail_shading else _PLAIN_FRAGMENT_SHADER
        programs[detail_shading] = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=fragment)
    return ctx, programs[detail_shading]


DEPTH_SLABS = 6


def _draw_runs(solid: np.ndarray, depth: np.ndarray) -> tuple[list, np.ndarray]:
    """([(first triangle, count, cull)], triangle order): nearest slab first; in a slab the two-sided triangles,
    then the culled ones, each nearest first."""
    edges = np.quantile(depth, np.linspace(0, 1, DEPTH_SLABS + 1)[1:-1]) if len(depth) else []
    slab = np.searchsorted(edges, depth, side="right")
    order = np.lexsort((depth, solid, slab))
    runs, first = [], 0
    for s in range(DEPTH_SLABS):
        for cull in (False, True):
            count = int(((slab == s) & (solid == cull)).sum())
            if count:
                runs.append((first, count, cull))
                first += count
    return runs, order


class MeshRenderer:
    """Rasterises one fixed-topology triangle mesh: per-vertex colour, smooth normals, Lambert+Blinn-Phong shading.

    size: output side in pixels; triangles: (F, 3) vertex indices (several disconnected parts are fine);
    samples: MSAA samples (0 or 1 = none; llvmpipe supports 4); profile: make `last_timings` split GPU
    work truly between draw and read-back (costs a pipeline flush); uv (V, 2) and detail (H, W, 4) uint8:
    texture coordinates and the detail texture a per-vertex `material` draws from (game.detail; none: a
    texture that changes nothing); solid (F,) bool: triangles of closed parts wound counter-clockwise seen
    from outside, drawn with back-face culling (their back faces are never seen; ~30% of the draw time on
    llvmpipe), the others two-sided; detail_shading False: the plain v1 model, ignoring materials (to measure
    what the detail costs); depth (F,): a distance from the usual viewpoint per triangle, so triangles are drawn
    nearest first in DEPTH_SLABS slabs and the depth test skips shading what they hide. Construction makes no
    GL objects.
    """

    def __init__(
        self,
        size: int,
        triangles: np.ndarray,
        samples: int = 4,
        supersample: int = 1,
        profile: bool = False,
        uv: np.ndarray | None = None,
        detail: np.ndarray | None = None,
        solid: np.ndarray | None = None,
        detail_shading: bool = True,
        depth: np.ndarray | None = None,
    ):
        triangles = np.asarray(triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0:
            raise ValueError(f"MeshRenderer: triangles must have shape (F, 3), F > 0, got {triangles.shape}")
        if not np.issubdtype(triangles.dtype, np.integer) or triangles.min() < 0:
            raise ValueError("MeshRenderer: triangles must be non-negative integer vertex indices")
        if int(size) <= 0:
            raise ValueError(f"MeshRenderer: size must be positive, got {size}")
        self.size = int(size)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        solid = np.zeros(len(triangles), bool) if solid is None else np.asarray(solid, bool)
        if solid.shape != (len(triangles),):
            raise ValueError(
                f"MeshRenderer: solid must have one flag per triangle ({len(triangles)}), got {solid.shape}"
            )
        depth = np.zeros(len(triangles)) if depth is None else np.asarray(depth, float)
        if depth.shape != (len(triangles),):
            raise ValueError(
                f"MeshRenderer: depth must have one value per triangle ({len(triangles)}), got {depth.shape}"
            )
        self._runs, self._draw_order = _draw_runs(solid, depth)
        self.samples = int(samples)
        self.supersample = max(1, int(supersample))
        self.profile = profile  # True: wait for the GPU after drawing, so draw_s and readback_s split truly
        self.uv = None if uv is None else np.ascontiguousarray(uv, dtype=np.float32)
        detail = _FLAT_DETAIL[None, None] if detail is None else np.asarray(detail)
        if detail.ndim != 3 or detail.shape[2] != 4 or detail.dtype != np.uint8:
            raise ValueError(
                f"MeshRenderer: detail must be an (H, W, 4) uint8 texture, got {detail.dtype} {detail.shape}"
            )
        self.detail = np.ascontiguousarray(detail)
        self.detail_shading = bool(detail_shading)
        self.last_timings: dict[str, float] = {}
        self._incidence = None  # (V, F) sparse, made for the first vertex count seen
        self._gl = None  # GL resources in the context of the thread that made them; never pickled

    # pickling: a copy in another process makes its own context and resources on its first render
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_gl"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Free this renderer's GL buffers and framebuffers (the thread's context stays for other renderers)."""
        gl, self._gl = self._gl, None
        if gl is not None and gl["ctx"] is _thread_context(create=False)[0]:
            for name in ("vao", "vbo", "ibo", "fbo_ms", "fbo", "color_ms", "depth_ms", "color", "detail"):
                if gl.get(name) is not None:
                    gl[name].release()

    def _resources(self, num_vertices: int) -> dict:
        ctx, program = _thread_context(detail_shading=self.detail_shading)
        if self._gl is not None and self._gl["ctx"] is ctx and self._gl["num_vertices"] == num_vertices:
            return self._gl
        if self._gl is not None and self._gl["ctx"] is ctx:
            self.close()  # vertex count changed
        # Resources inherited through fork(), or made in another thread, belong to another context: drop, never release.
        self._gl = None
        t0 = time.perf_counter()
        import moderngl

        size = (self.size * self.supersample,) * 2
        samples = min(max(self.samples, 0), ctx.max_samples)
        gl = {"num_vertices": num_vertices, "ctx": ctx}
        gl["color"] = ctx.renderbuffer(size, components=4)
        gl["fbo"] = ctx.framebuffer(color_attachments=[gl["color"]])
        if samples > 1:
            gl["color_ms"] = ctx.renderbuffer(size, components=4, samples=samples)
            gl["depth_ms"] = ctx.depth_renderbuffer(size, samples=samples)
            gl["fbo_ms"] = ctx.framebuffer(color_attachments=[gl["color_ms"]], depth_attachment=gl["depth_ms"])
        else:
            gl["depth_ms"] = ctx.depth_renderbuffer(size)
            gl["fbo_ms"] = ctx.framebuffer(color_attachments=[gl["color"]], depth_attachment=gl["depth_ms"])
        gl["resolve"] = samples > 1
        gl["vbo"] = ctx.buffer(reserve=num_vertices * _FLOATS_PER_VERTEX * 4, dynamic=True)
        gl["ibo"] = ctx.buffer(self.triangles[self._draw_order].tobytes())
        attributes = ["in_position", "in_normal", "in_color", "in_gloss"]
        layout = "3f 3f 3f 1f 2f 2f" if self.detail_shading else "3f 3f 3f 1f 16x"  # plain: skip uv, material
        if self.detail_shading:
            attributes += ["in_uv", "in_material"]
        gl["vao"] = ctx.vertex_array(
            program, [(gl["vbo"], layout, *attributes)], index_buffer=gl["ibo"], index_element_size=4
        )
        height, width = self.detail.shape[:2]
        gl["detail"] = ctx.texture((width, height), 4, self.detail.tobytes())
        # The nearest texel, no mipmaps: trilinear costs ~18% of the draw on llvmpipe and bilinear ~8% more than
        # nearest; callers pass a texture already sized for their pictures (game.detail.detail_texture(level)).
        gl["detail"].filter = (moderngl.NEAREST, moderngl.NEAREST)
        gl["detail"].repeat_x = gl["detail"].repeat_y = True
        gl["program"] = program
        gl["interleaved"] = np.zeros((num_vertices, _FLOATS_PER_VERTEX), np.float32)
        if self.uv is not None:
            gl["interleaved"][:, 10:12] = self.uv
        gl["pixels"] = bytearray(size[0] * size[1] * 4)
        gl["moderngl"] = moderngl
        gl["setup_s"] = time.perf_counter() - t0
        self._gl = gl
        return gl

    def render(
        self,
        vertices: np.ndarray,
        colors: np.ndarray,
        view_proj: np.ndarray,
        lighting: Lighting,
        gloss: np.ndarray | None = None,
        background=DEFAULT_BACKGROUND,
        material: np.ndarray | None = None,
    ) -> np.ndarray:
        """Render the mesh at `vertices` (V, 3) world -> (S, S, 4) uint8 RGBA, top-left origin, alpha = coverage.

        material: (V, 4) per-vertex weights in [0, 1] of skin shading, stubble stipple, strand streaks and grain
        (game.detail). They reach the shader packed in two floats, (skin + stipple, streak - (grain - skin)),
        exact where stipple is only on full skin and grain beyond the skin's only where there are no streaks."""
        t0 = time.perf_counter()
        vertices = np.asarray(vertices, dtype=np.float32)
        num_vertices = len(vertices)
        self._check_inputs(vertices, colors, gloss, material)
        if self._incidence is None or self._incidence.shape[0] != num_vertices:
            self._incidence = vertex_incidence(self.triangles, num_vertices)
        normals = vertex_normals(vertices, self.triangles, self._incidence)
        t1 = time.perf_counter()

        gl = self._resources(num_vertices)
        setup_s = gl.pop("setup_s", 0.0)
        t1b = time.perf_counter()
        data = gl["interleaved"]
        data[:, 0:3] = vertices
        data[:, 3:6] = normals
        data[:, 6:9] = colors
        data[:, 9] = 1.0 if gloss is None else gloss
        if material is None:
            data[:, 12:14] = 0.0
        else:  # two interpolated floats instead of four: llvmpipe pays per varying per pixel
            np.add(material[:, 0], material[:, 1], out=data[:, 12])
            np.subtract(material[:, 2], np.maximum(material[:, 3] - material[:, 0], 0.0), out=data[:, 13])
        gl["vbo"].write(data)
        program = gl["program"]
        program["view_proj"].write(np.ascontiguousarray(np.asarray(view_proj, np.float32).T))
        program["eye"].value = tuple(float(x) for x in camera_position(view_proj))
        for name, value in lighting.uniforms().items():
            program[name].value = value
        if self.detail_shading:
            program["detail"].value = 0
            gl["detail"].use(location=0)
        t2 = time.perf_counter()

        ctx, mgl = gl["ctx"], gl["moderngl"]
        gl["fbo_ms"].use()
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE)
        r, g, b = (float(c) for c in background)
        gl["fbo_ms"].clear(r, g, b, 0.0, depth=1.0)
        for first, count, cull in self._runs:
            if cull:
                ctx.enable(mgl.CULL_FACE)
            gl["vao"].render(mgl.TRIANGLES, vertices=3 * count, first=3 * first)
            if cull:
                ctx.disable(mgl.CULL_FACE)
        if gl["resolve"]:
            ctx.copy_framebuffer(gl["fbo"], gl["fbo_ms"])
        if self.profile:
            ctx.finish()
        t3 = time.perf_counter()

        gl["fbo"].read_into(gl["pixels"], components=4, alignment=1)
        side = self.size * self.supersample
        image = np.frombuffer(gl["pixels"], np.uint8).reshape(side, side, 4)[::-1]  # GL rows go up
        if self.supersample > 1:  # box filter: the mean of k x k samples, as an MSAA resolve
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        else:
            image = image.copy()
        t4 = time.perf_counter()
        self.last_timings = {
            "normals_s": t1 - t0,
            "setup_s": setup_s,  # context/buffers, first render in a process only
            "upload_s": t2 - t1b,
            "draw_s": t3 - t2,  # GPU work included only with profile=True, else it lands in readback_s
            "readback_s": t4 - t3,
            "total_s": t4 - t0,
        }
        return image

    def _check_inputs(self, vertices, colors, gloss, material=None) -> None:
        v = len(vertices)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"MeshRenderer.render: vertices must have shape (V, 3), got {vertices.shape}")
        if v <= int(self.triangles.max()):
            raise ValueError(
                f"MeshRenderer.render: triangles use vertex {int(self.triangles.max())}, but vertices has {v} rows"
            )
        if np.shape(colors) != (v, 3):
            raise ValueError(f"MeshRenderer.render: colors must have shape ({v}, 3), got {np.shape(colors)}")
        if gloss is not None and np.shape(gloss) != (v,):
            raise ValueError(f"MeshRenderer.render: gloss must have shape ({v},), got {np.shape(gloss)}")
        if material is not None and np.shape(material) != (v, 4):
            raise ValueError(f"MeshRenderer.render: material must have shape ({v}, 4), got {np.shape(material)}")
        if self.uv is not None and len(self.uv) != v:
            raise ValueError(f"MeshRenderer.render: uv has {len(self.uv)} rows, but vertices has {v}")
