"""Rasterise the game's head mesh: per-vertex colour, smooth normals, Lambert + Blinn-Phong, MSAA.

Two backends with one shading model and one output convention:
- `MeshRenderer`: moderngl on EGL (Mesa llvmpipe on a CPU, the vendor driver on a GPU); numpy in,
  uint8 RGBA out. The GL context is made lazily, on the first render in each process.
- `NvdiffrastRenderer`: nvdiffrast on CUDA; torch in, differentiable float RGBA out.

Output of both: (S, S, 4), top-left origin (row 0 is the top of the image), RGB already composited over
`background`, alpha = coverage (the MSAA / antialiasing fraction at silhouettes).

Shading, per pixel, with n the interpolated, renormalised vertex normal turned towards the viewer on
faces seen from behind (two-sided: open borders and consistently wound meshes of either orientation):
    rgb = colour * (ambient + key_color * max(n.k, 0) + fill_color * max(n.f, 0))
          + key_color * specular * gloss * max(n.h, 0) ** shininess   (only where n.k > 0)
    h = normalize(k + v), v = unit vector from the surface to the camera; rgb clamped to [0, 1].
Colours are treated as display values (no gamma handling).

Processes and threads: each process makes its own context on its first render (keyed by os.getpid(), so
a renderer pickled into a worker, or inherited through fork, rebuilds its GL objects there). Render from
one thread per process: the context is current in the thread that made it.
Fork safety: an EGL context made in a parent before fork() hangs llvmpipe in the children (its worker
threads hold locks), even after the context is released. The first render in a process therefore sets
`LP_NUM_THREADS=0` unless the caller set it: llvmpipe then rasterises in the calling thread (parallelism
comes from worker processes) and forked children render fine (tests/test_render.py checks it). Not tested
with a vendor EGL driver: on a GPU machine, make renderers inside workers or use the `spawn` start method.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse

from game.camera import camera_position

DEFAULT_BACKGROUND = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Lighting:
    """Key light + fill light + ambient; directions point from the surface towards the light (world space)."""

    key_direction: tuple
    key_color: tuple
    fill_direction: tuple
    fill_color: tuple
    ambient: tuple
    specular: float = 0.25
    shininess: float = 24.0

    @staticmethod
    def studio() -> Lighting:
        """The game's fixed portrait light: soft key from the upper front on the viewer's left, fill from the right."""
        return Lighting(
            key_direction=_unit((-0.45, 0.50, 0.75)),
            key_color=(0.70, 0.70, 0.70),
            fill_direction=_unit((0.60, 0.10, 0.80)),
            fill_color=(0.25, 0.25, 0.25),
            ambient=(0.30, 0.30, 0.30),
        )

    def uniforms(self) -> dict:
        """The shader inputs: unit directions, float tuples."""
        return {
            "key_direction": _unit(self.key_direction),
            "key_color": tuple(float(c) for c in self.key_color),
            "fill_direction": _unit(self.fill_direction),
            "fill_color": tuple(float(c) for c in self.fill_color),
            "ambient": tuple(float(c) for c in self.ambient),
            "specular": float(self.specular),
            "shininess": float(self.shininess),
        }


def _unit(v) -> tuple:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    if v.shape != (3,) or n == 0:
        raise ValueError(f"Lighting: a direction must be a non-zero 3-vector, got {tuple(v.ravel())}")
    return tuple(float(x) for x in v / n)


def vertex_incidence(triangles: np.ndarray, num_vertices: int) -> scipy.sparse.csr_matrix:
    """Sparse (V, F) matrix, 1 where vertex v is a corner of face f: per-vertex sums of face values in one product."""
    f = len(triangles)
    rows = triangles.reshape(-1)
    cols = np.repeat(np.arange(f), 3)
    inc = scipy.sparse.csr_matrix((np.ones(3 * f, np.float32), (rows, cols)), shape=(num_vertices, f))
    inc.sum_duplicates()  # a degenerate face that repeats a vertex counts once per corner, as np.add.at would
    return inc


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray, incidence: scipy.sparse.csr_matrix) -> np.ndarray:
    """Unit smooth normals (V, 3) float32: area-weighted sums of face normals (zero for unused vertices)."""
    a, b, c = vertices.take(triangles.T, axis=0)  # corners, each (F, 3); take is 5x faster than fancy indexing
    face = np.cross(b - a, c - a)  # (F, 3), |.| = 2 area
    normals = np.asarray(incidence @ face, dtype=np.float32)
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
    normals /= np.maximum(length, 1e-20)[:, None]
    return normals


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
out vec3 v_position;
out vec3 v_normal;
out vec3 v_color;
out float v_gloss;
void main() {
    v_position = in_position;
    v_normal = in_normal;
    v_color = in_color;
    v_gloss = in_gloss;
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

_FLOATS_PER_VERTEX = 10  # position 3, normal 3, colour 3, gloss 1
_PROCESS_GL: dict = {"pid": None, "ctx": None, "program": None}  # this process's one EGL context


def _load_llvm_users_first() -> None:
    """Import triton (torch's GPU compiler, loaded by some libraries on import) before Mesa starts.

    Both bundle LLVM; loading triton after llvmpipe's EGL context exists segfaults the process, while
    the other order is fine. Importing it here makes the order safe whatever the caller imports later.
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


def _process_context():
    """This process's moderngl context and shader program, made on first use (never inherited across fork)."""
    pid = os.getpid()
    if _PROCESS_GL["pid"] != pid:
        import moderngl

        _load_llvm_users_first()
        os.environ.setdefault("LP_NUM_THREADS", "0")  # see the module docstring: keeps fork() usable
        ctx = moderngl.create_standalone_context(backend="egl", require=330)
        program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        _PROCESS_GL.update(pid=pid, ctx=ctx, program=program)
    return _PROCESS_GL["ctx"], _PROCESS_GL["program"]


class MeshRenderer:
    """Rasterises one fixed-topology triangle mesh: per-vertex colour, smooth normals, Lambert+Blinn-Phong shading.

    size: output side in pixels; triangles: (F, 3) vertex indices (several disconnected parts are fine);
    samples: MSAA samples (0 or 1 = none; llvmpipe supports 4); profile: make `last_timings` split GPU
    work truly between draw and read-back (costs a pipeline flush). Construction makes no GL objects.
    """

    def __init__(self, size: int, triangles: np.ndarray, samples: int = 4, supersample: int = 1, profile: bool = False):
        triangles = np.asarray(triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0:
            raise ValueError(f"MeshRenderer: triangles must have shape (F, 3), F > 0, got {triangles.shape}")
        if not np.issubdtype(triangles.dtype, np.integer) or triangles.min() < 0:
            raise ValueError("MeshRenderer: triangles must be non-negative integer vertex indices")
        if int(size) <= 0:
            raise ValueError(f"MeshRenderer: size must be positive, got {size}")
        self.size = int(size)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        self.samples = int(samples)
        self.supersample = max(1, int(supersample))
        self.profile = profile  # True: wait for the GPU after drawing, so draw_s and readback_s split truly
        self.last_timings: dict[str, float] = {}
        self._incidence = None  # (V, F) sparse, made for the first vertex count seen
        self._gl = None  # per-process GL resources; never pickled

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
        """Free this renderer's GL buffers and framebuffers (the process's context stays for other renderers)."""
        gl, self._gl = self._gl, None
        if gl is not None and gl["pid"] == os.getpid():
            for name in ("vao", "vbo", "ibo", "fbo_ms", "fbo", "color_ms", "depth_ms", "color"):
                if gl.get(name) is not None:
                    gl[name].release()

    def _resources(self, num_vertices: int) -> dict:
        if self._gl is not None and self._gl["pid"] == os.getpid() and self._gl["num_vertices"] == num_vertices:
            return self._gl
        if self._gl is not None and self._gl["pid"] == os.getpid():
            self.close()  # vertex count changed
        self._gl = None  # resources inherited through fork() belong to the parent's context: drop, never release
        t0 = time.perf_counter()
        import moderngl

        ctx, program = _process_context()
        size = (self.size * self.supersample,) * 2
        samples = min(max(self.samples, 0), ctx.max_samples)
        gl = {"pid": os.getpid(), "num_vertices": num_vertices, "ctx": ctx}
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
        gl["ibo"] = ctx.buffer(self.triangles.tobytes())
        gl["vao"] = ctx.vertex_array(
            program,
            [(gl["vbo"], "3f 3f 3f 1f", "in_position", "in_normal", "in_color", "in_gloss")],
            index_buffer=gl["ibo"],
            index_element_size=4,
        )
        gl["program"] = program
        gl["interleaved"] = np.empty((num_vertices, _FLOATS_PER_VERTEX), np.float32)
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
    ) -> np.ndarray:
        """Render the mesh at `vertices` (V, 3) world -> (S, S, 4) uint8 RGBA, top-left origin, alpha = coverage."""
        t0 = time.perf_counter()
        vertices = np.asarray(vertices, dtype=np.float32)
        num_vertices = len(vertices)
        self._check_inputs(vertices, colors, gloss)
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
        gl["vbo"].write(data)
        program = gl["program"]
        program["view_proj"].write(np.ascontiguousarray(np.asarray(view_proj, np.float32).T))
        program["eye"].value = tuple(float(x) for x in camera_position(view_proj))
        for name, value in lighting.uniforms().items():
            program[name].value = value
        t2 = time.perf_counter()

        ctx, mgl = gl["ctx"], gl["moderngl"]
        gl["fbo_ms"].use()
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE)
        r, g, b = (float(c) for c in background)
        gl["fbo_ms"].clear(r, g, b, 0.0, depth=1.0)
        gl["vao"].render(mgl.TRIANGLES)
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

    def _check_inputs(self, vertices, colors, gloss) -> None:
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


# --------------------------------------------------------------------------- nvdiffrast (CUDA) backend


class NvdiffrastRenderer:
    """The same mesh, shading and output convention as MeshRenderer, on CUDA with nvdiffrast, differentiable.

    Inputs may be batched: vertices (B, V, 3), colors (V, 3) or (B, V, 3), gloss (V,) or (B, V),
    view_proj (4, 4) or (B, 4, 4), background (3,) or (B, 3); output (B, S, S, 4) float in [0, 1]
    (unbatched in, unbatched out). Silhouettes are antialiased with `nvdiffrast.torch.antialias` (analytic,
    differentiable in the vertex positions), so edge pixels differ a little from MeshRenderer's MSAA.
    """

    def __init__(self, size: int, triangles, device="cuda"):
        import torch

        triangles = np.asarray(triangles.cpu() if isinstance(triangles, torch.Tensor) else triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0:
            raise ValueError(f"NvdiffrastRenderer: triangles must have shape (F, 3), F > 0, got {triangles.shape}")
        self.size = int(size)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        self.device = torch.device(device)
        self._state = None  # per-process CUDA context and tensors; never pickled

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_state"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def close(self) -> None:
        """Drop the rasteriser context and the triangle tensors."""
        self._state = None

    def _resources(self) -> dict:
        if self._state is not None and self._state["pid"] == os.getpid():
            return self._state
        import nvdiffrast.torch as dr
        import torch

        tri = torch.as_tensor(self.triangles, dtype=torch.int32, device=self.device).contiguous()
        self._state = {
            "pid": os.getpid(),
            "dr": dr,
            "ctx": dr.RasterizeCudaContext(device=self.device),
            "tri": tri,
            "tri_long": tri.long(),
            "topology_hash": dr.antialias_construct_topology_hash(tri),
        }
        return self._state

    def render(self, vertices, colors, view_proj, lighting: Lighting, gloss=None, background=DEFAULT_BACKGROUND):
        """Render (B, V, 3) or (V, 3) vertices -> (B, S, S, 4) or (S, S, 4) float RGBA in [0, 1], top-left origin."""
        import torch
        import torch.nn.functional as F

        st = self._resources()
        dr, tri, tri_long = st["dr"], st["tri"], st["tri_long"]
        dev, f32 = self.device, torch.float32
        v = torch.as_tensor(vertices).to(dev, f32)  # keeps the autograd graph of a tensor
        batched = v.dim() == 3
        v = v if batched else v[None]  # (B, V, 3)
        bsz, nv = v.shape[:2]
        if nv <= int(self.triangles.max()):
            raise ValueError(
                f"NvdiffrastRenderer.render: triangles use vertex {int(self.triangles.max())}, vertices has {nv} rows"
            )
        col = torch.as_tensor(colors, dtype=f32, device=dev).expand(bsz, nv, 3)
        if gloss is None:
            shine = torch.ones(bsz, nv, 1, dtype=f32, device=dev)
        else:
            shine = torch.as_tensor(gloss, dtype=f32, device=dev).reshape(-1, nv, 1).expand(bsz, nv, 1)
        vp = torch.as_tensor(view_proj, dtype=f32, device=dev).reshape(-1, 4, 4).expand(bsz, 4, 4)
        bg = torch.as_tensor(background, dtype=f32, device=dev).reshape(-1, 1, 1, 3)
        u = {k: torch.as_tensor(val, dtype=f32, device=dev) for k, val in lighting.uniforms().items()}

        clip = torch.cat([v, torch.ones_like(v[..., :1])], -1) @ vp.transpose(1, 2)  # (B, V, 4)
        clip = clip.contiguous()
        normals = _vertex_normals_torch(v, tri_long)  # (B, V, 3)
        if isinstance(view_proj, torch.Tensor):
            eye = _camera_position_torch(vp)  # (B, 4)
        else:  # numpy: no device round trip
            eye = torch.as_tensor(camera_position(view_proj), dtype=f32, device=dev).expand(bsz, 4)

        rast, _ = dr.rasterize(st["ctx"], clip, tri, resolution=(self.size, self.size))  # (B, S, S, 4), row 0 = bottom
        attrs = torch.cat([v, normals, col, shine], -1).contiguous()  # (B, V, 10)
        feat, _ = dr.interpolate(attrs, rast, tri)
        pos, nrm, albedo, gloss_px = feat[..., 0:3], feat[..., 3:6], feat[..., 6:9], feat[..., 9:10]

        # Two-sided normals, as gl_FrontFacing: a face is front-facing when counter-clockwise on screen.
        corners = clip.detach()[:, tri_long][..., [0, 1, 3]]  # (B, F, 3 corners, (x, y, w))
        front = torch.linalg.det(corners.double()) > 0  # (B, F)
        front = torch.cat([torch.zeros_like(front[:, :1]), front], 1)  # index 0 = no triangle
        tri_id = rast[..., 3].long()  # triangle id + 1, 0 where empty
        facing = torch.gather(front, 1, tri_id.reshape(bsz, -1)).reshape(bsz, self.size, self.size, 1)
        n = F.normalize(nrm, dim=-1, eps=1e-10)
        n = torch.where(facing, n, -n)

        to_eye = eye[:, None, None, :3] - pos * eye[:, None, None, 3:]
        view = F.normalize(to_eye, dim=-1, eps=1e-10)
        nk = (n * u["key_direction"]).sum(-1, keepdim=True).clamp_min(0.0)
        nf = (n * u["fill_direction"]).sum(-1, keepdim=True).clamp_min(0.0)
        h = F.normalize(u["key_direction"] + view, dim=-1, eps=1e-10)
        spec = u["specular"] * gloss_px * (n * h).sum(-1, keepdim=True).clamp_min(0.0) ** u["shininess"]
        spec = torch.where(nk > 0, spec, torch.zeros_like(spec))
        rgb = albedo * (u["ambient"] + u["key_color"] * nk + u["fill_color"] * nf) + u["key_color"] * spec
        rgb = rgb.clamp(0.0, 1.0)

        covered = (tri_id > 0)[..., None]
        rgba = torch.cat([torch.where(covered, rgb, bg.expand_as(rgb)), covered.to(f32)], -1).contiguous()
        rgba = dr.antialias(rgba, rast, clip, tri, topology_hash=st["topology_hash"])
        rgba = torch.flip(rgba, dims=[1])  # nvdiffrast's row 0 is the bottom (OpenGL); ours is the top
        return rgba if batched else rgba[0]


def _vertex_normals_torch(v, tri_long):
    """Unit smooth normals (B, V, 3) of (B, V, 3) vertices: area-weighted face normals summed per vertex."""
    import torch
    import torch.nn.functional as F

    a, b, c = v[:, tri_long[:, 0]], v[:, tri_long[:, 1]], v[:, tri_long[:, 2]]
    face = torch.cross(b - a, c - a, dim=-1)  # (B, F, 3)
    normals = torch.zeros_like(v)
    for k in range(3):
        normals = normals.index_add(1, tri_long[:, k], face)
    return F.normalize(normals, dim=-1, eps=1e-20)


def _camera_position_torch(vp):
    """Homogeneous camera centres (B, 4) of (B, 4, 4) view-projection matrices; see game.camera.camera_position."""
    import torch

    rows = vp.detach().double()[:, [0, 1, 3]]  # (B, 3, 4)
    centre = torch.linalg.svd(rows).Vh[:, -1]  # (B, 4), null vector
    w = centre[:, 3:]
    finite = w.abs() > 1e-9 * centre[:, :3].abs().amax(-1, keepdim=True)
    point = torch.cat([centre[:, :3] / torch.where(finite, w, torch.ones_like(w)), torch.ones_like(w)], -1)
    direction = torch.nn.functional.normalize(centre[:, :3], dim=-1)
    towards = ((vp.detach().double()[:, 2, :3] * direction).sum(-1, keepdim=True) > 0).double()
    direction = torch.cat([direction * (1 - 2 * towards), torch.zeros_like(w)], -1)
    return torch.where(finite, point, direction).to(vp.dtype)
