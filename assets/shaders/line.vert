// line.vert: coloured world-space geometry (grid, trails, arrows, footprints); the world
// position goes on to the fragment shader for the fade around the camera target.
#version 330 core
layout(location = 0) in vec3 a_pos;
layout(location = 1) in vec4 a_color;

uniform mat4 u_viewproj;

out vec4 v_color;
out vec3 v_world;

void main()
{
    v_color = a_color;
    v_world = a_pos;
    gl_Position = u_viewproj * vec4(a_pos, 1.0);
}
