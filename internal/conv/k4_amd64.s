//go:build amd64 && !purego

#include "textflag.h"

// func im2rowK4(dst, src *float32, c, plane, wp int)
TEXT ·im2rowK4(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ c+16(FP), CX
	MOVQ plane+24(FP), R8
	MOVQ wp+32(FP), R9
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	TESTQ CX, CX
	JLE  done
loop:
	VMOVUPS      (SI), X0
	VINSERTF32X4 $1, (SI)(R9*1), Z0, Z0
	VINSERTF32X4 $2, (SI)(R9*2), Z0, Z0
	VINSERTF32X4 $3, (SI)(R10*1), Z0, Z0
	VMOVUPS      Z0, (DI)
	ADDQ         R8, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop
done:
	VZEROUPPER
	RET

// func row2imK4(dst, row *float32, c, plane, wp int)
TEXT ·row2imK4(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ row+8(FP), SI
	MOVQ c+16(FP), CX
	MOVQ plane+24(FP), R8
	MOVQ wp+32(FP), R9
	SHLQ $2, R8
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	TESTQ CX, CX
	JLE  done
loop:
	VMOVUPS       (SI), Z0
	VEXTRACTF32X4 $1, Z0, X1
	VEXTRACTF32X4 $2, Z0, X2
	VEXTRACTF32X4 $3, Z0, X3
	VADDPS        (DI), X0, X4
	VMOVUPS       X4, (DI)
	VADDPS        (DI)(R9*1), X1, X5
	VMOVUPS       X5, (DI)(R9*1)
	VADDPS        (DI)(R9*2), X2, X6
	VMOVUPS       X6, (DI)(R9*2)
	VADDPS        (DI)(R10*1), X3, X7
	VMOVUPS       X7, (DI)(R10*1)
	ADDQ          $64, SI
	ADDQ          R8, DI
	DECQ          CX
	JNZ           loop
done:
	VZEROUPPER
	RET

// func packK4(dst, src *float32, c, plane, wp, group, skip int)
// im2rowK4 whose destination jumps skip further floats after every group
// channels (the panels of a packed GEMM operand).
TEXT ·packK4(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ c+16(FP), CX
	MOVQ plane+24(FP), R8
	MOVQ wp+32(FP), R9
	MOVQ group+40(FP), R11
	MOVQ skip+48(FP), R12
	SHLQ $2, R8
	SHLQ $2, R9
	SHLQ $2, R12
	LEAQ (R9)(R9*2), R10
	TESTQ CX, CX
	JLE  pdone
	MOVQ R11, R13
ploop:
	VMOVUPS      (SI), X0
	VINSERTF32X4 $1, (SI)(R9*1), Z0, Z0
	VINSERTF32X4 $2, (SI)(R9*2), Z0, Z0
	VINSERTF32X4 $3, (SI)(R10*1), Z0, Z0
	VMOVUPS      Z0, (DI)
	ADDQ         R8, SI
	ADDQ         $64, DI
	DECQ         R13
	JNZ          pnext
	ADDQ         R12, DI
	MOVQ         R11, R13
pnext:
	DECQ         CX
	JNZ          ploop
pdone:
	VZEROUPPER
	RET
