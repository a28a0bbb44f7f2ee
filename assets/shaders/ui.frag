// ui.frag: solid colour where u < 0, else the colour masked by the font atlas.
#version 330 core
in vec2 v_uv;
in vec4 v_color;

uniform sampler2D u_font;

out vec4 frag;

void main()
{
    float a = v_uv.x < 0.0 ? 1.0 : texture(u_font, v_uv).r;
    frag = vec4(v_color.rgb, v_color.a * a);
}
