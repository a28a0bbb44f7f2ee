// sphere.vert: one instance of the unit sphere mesh per body, moved to its centre and scaled;
// lighting happens per pixel in view space, so the normal is passed on unnormalised.
#version 330 core
layout(location = 0) in vec3 a_pos;    // unit sphere vertex, which is also its normal
layout(location = 1) in vec3 i_center; // body position, world units
layout(location = 2) in vec3 i_color;  // body colour by charge

uniform mat4 u_view;
uniform mat4 u_proj;
uniform float u_radius;

out vec3 v_normal; // view space
out vec3 v_pos;    // view space
out vec3 v_color;

void main()
{
    vec4 p = u_view * vec4(i_center + u_radius * a_pos, 1.0);
    v_pos = p.xyz;
    v_normal = mat3(u_view) * a_pos;
    v_color = i_color;
    gl_Position = u_proj * p;
}
