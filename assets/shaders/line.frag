// line.frag: vertex colour, faded out with horizontal distance from u_fade_center so the
// floor grid has no hard edge (u_fade_radius 0 turns the fade off).
#version 330 core
in vec4 v_color;
in vec3 v_world;

uniform vec3 u_fade_center;
uniform float u_fade_radius;

out vec4 frag;

void main()
{
    float a = v_color.a;
    if (u_fade_radius > 0.0) {
        float d = length(v_world.xy - u_fade_center.xy) / u_fade_radius;
        a *= clamp(1.0 - d * d, 0.0, 1.0);
    }
    frag = vec4(v_color.rgb, a);
}
