"""Blender side of the synthesis benchmark: run by Blender, not by the project's Python.

    blender -b --factory-startup --python benchmarks/blender_cycles.py -- SCENE.npz OUT_DIR SAMPLES

Sets up Cycles as SURREAL did (one body with an emission shader, the photograph composited
behind it, 320×240, no anti-aliasing, film transparent, the vector, normal and material-
index passes on), then for every frame of SCENE.npz moves the mesh's vertices, renders, and
writes a multilayer EXR with the combined image, depth (Z), segmentation (material index),
normals and the vector (flow) pass. Prints the seconds per frame.
"""

import sys
import time

import bpy
import numpy as np

scene_file, out_dir, samples = sys.argv[sys.argv.index("--") + 1 :][:3]
data = np.load(scene_file)
vertices, faces, face_parts = data["vertices"], data["faces"], data["face_parts"]
photo = data["photo"]  # (H, W, 3) uint8, RGB

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = int(samples)
scene.cycles.use_denoising = False  # SURREAL's Blender had no denoiser; Debian's has no OIDN
scene.render.resolution_x, scene.render.resolution_y = 320, 240
scene.render.resolution_percentage = 100
scene.render.film_transparent = True
scene.render.filter_size = 0.01  # no anti-aliasing, as SURREAL set use_antialiasing = False
layer = scene.view_layers[0]
layer.use_pass_z = True
layer.use_pass_vector = True
layer.use_pass_normal = True
layer.use_pass_material_index = True
layer.use_pass_emit = True
scene.render.use_motion_blur = False
scene.view_settings.view_transform = "Standard"  # Blender 2.78's colour management

# the mesh, one material per SMPL part (the material index pass is SURREAL's segmentation)
mesh = bpy.data.meshes.new("body")
mesh.from_pydata(vertices[0].tolist(), [], faces.tolist())
body = bpy.data.objects.new("body", mesh)
scene.collection.objects.link(body)
for part in range(1, 25):
    material = bpy.data.materials.new(f"part{part}")
    material.pass_index = part
    material.use_nodes = True
    nodes = material.node_tree.nodes
    nodes.clear()
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Color"].default_value = (0.3 + 0.02 * part, 0.5, 0.6, 1.0)
    output = nodes.new("ShaderNodeOutputMaterial")
    material.node_tree.links.new(emission.outputs[0], output.inputs["Surface"])
    body.data.materials.append(material)
mesh.polygons.foreach_set("material_index", (face_parts - 1).astype(np.int32))

# camera: OpenCV extrinsics given as world → camera (x right, y down, z forward)
rotation, translation = data["rotation"], data["translation"]
camera_data = bpy.data.cameras.new("camera")
camera_data.lens, camera_data.sensor_width = 60.0, 32.0
camera = bpy.data.objects.new("camera", camera_data)
scene.collection.objects.link(camera)
scene.camera = camera
blender_from_cv = np.diag([1.0, -1.0, -1.0])
world_from_camera = np.eye(4)
world_from_camera[:3, :3] = rotation.T @ blender_from_cv
world_from_camera[:3, 3] = -rotation.T @ translation
camera.matrix_world = world_from_camera.T.tolist()  # Blender's matrices are row-major lists

# the background photograph behind the body, in the compositor (SURREAL's alpha-over)
image = bpy.data.images.new("photo", photo.shape[1], photo.shape[0])
rgba = np.concatenate([photo[::-1] / 255.0, np.ones(photo.shape[:2] + (1,))], axis=2)
image.pixels.foreach_set(rgba.astype(np.float32).ravel())
scene.use_nodes = True
tree = scene.node_tree
tree.nodes.clear()
layers = tree.nodes.new("CompositorNodeRLayers")
background = tree.nodes.new("CompositorNodeImage")
background.image = image
over = tree.nodes.new("CompositorNodeAlphaOver")
tree.links.new(background.outputs["Image"], over.inputs[1])
tree.links.new(layers.outputs["Image"], over.inputs[2])
exr = tree.nodes.new("CompositorNodeOutputFile")
exr.format.file_format = "OPEN_EXR_MULTILAYER"
exr.base_path = f"{out_dir}/frame_"
exr.file_slots.clear()
for name, socket in (
    ("Image", over.outputs[0]),
    ("Depth", layers.outputs["Depth"]),
    ("IndexMA", layers.outputs["IndexMA"]),
    ("Normal", layers.outputs["Normal"]),
    ("Vector", layers.outputs["Vector"]),
):
    exr.file_slots.new(name)
    tree.links.new(socket, exr.inputs[name])
composite = tree.nodes.new("CompositorNodeComposite")
tree.links.new(over.outputs[0], composite.inputs[0])

times = []
for frame in range(len(vertices)):
    mesh.vertices.foreach_set("co", vertices[frame].astype(np.float32).ravel())
    mesh.update()
    scene.frame_set(frame + 1)
    start = time.perf_counter()
    bpy.ops.render.render(write_still=False)
    times.append(time.perf_counter() - start)
warm = times[1:] if len(times) > 1 else times
print(f"BLENDER_SECONDS_PER_FRAME {sum(warm) / len(warm):.6f}")
