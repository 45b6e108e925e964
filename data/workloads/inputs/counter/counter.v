// An 8-bit counter with synchronous reset: the design the yosys workload synthesises for iCE40.
// Written for wasmlab (Apache-2.0); 8 flip-flops, so a correct synthesis reports 8 SB_DFFSR cells.
module counter(input clk, input rst, output reg [7:0] q);
  always @(posedge clk)
    if (rst) q <= 0; else q <= q + 1;
endmodule
