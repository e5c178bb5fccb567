"""The nvdiffrast (CUDA) backend: MeshRenderer's mesh, shading and output convention, differentiable in torch."""

from __future__ import annotations

import os

import numpy as np

from game.camera import camera_position
from game.shading import DEFAULT_BACKGROUND, Lighting


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
