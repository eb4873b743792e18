; ratedirty.asm -- boot-sector guest that dirties RAM at a fixed rate (e2k-migrate tools/).
; Written for this project (nasm syntax); assembled bytes are embedded in ../rate-guest.ts,
; which patches the rate into RATE_K before booting it.
;
; Same memory layout and invariant as the fixtures' dirtyloop.asm: the loop increments byte 0
; of the pages in [1 MiB, RAM - 1 MiB) in order; at the end of each pass it stores the pass
; count at dword [0x600] and prints 'B' on COM1 ('A' once at start). dword [0x604] = range end.
; After 'A' it makes one unpaced pass (so that every page is non-zero at once, then 'B');
; from then on it is paced: PIT channel 0 (1,193,182 Hz, mode 2, period 65536) is polled,
; and after T ticks exactly floor(T * RATE_K / 2^24) pages have been dirtied, so
; RATE_K = pages_per_second * 2^24 / 1193182.

PASS_ADDR   equ 0x600
END_ADDR    equ 0x604
PREV_ADDR   equ 0x608           ; word: last PIT count read
START_ADDR  equ 0x100000

        bits 16
        org 0x7c00
entry:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        in al, 0x92
        or al, 0x02
        and al, 0xfe
        out 0x92, al
        lgdt [gdtr]
        mov eax, cr0
        or al, 1
        mov cr0, eax
        jmp dword 0x08:pmode

        bits 32
pmode:
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov esp, 0x7c00

        mov al, 0x35            ; RAM size from CMOS, as dirtyloop.asm
        out 0x70, al
        in al, 0x71
        mov ah, al
        mov al, 0x34
        out 0x70, al
        in al, 0x71
        movzx ebx, ax
        test ebx, ebx
        jz .below16
        shl ebx, 16
        add ebx, 0x1000000
        jmp .have_top
.below16:
        mov al, 0x31
        out 0x70, al
        in al, 0x71
        mov ah, al
        mov al, 0x30
        out 0x70, al
        in al, 0x71
        movzx ebx, ax
        shl ebx, 10
        add ebx, START_ADDR
.have_top:
        sub ebx, 0x100000
        mov [END_ADDR], ebx
        xor ecx, ecx
        mov [PASS_ADDR], ecx
        mov dx, 0x3f8
        mov al, 'A'
        out dx, al

        mov eax, START_ADDR     ; one unpaced pass first: every page non-zero at once
.prefill:
        inc byte [eax]
        add eax, 0x1000
        cmp eax, ebx
        jb .prefill
        mov dword [PASS_ADDR], 1
        mov al, 'B'
        out dx, al

        mov al, 0x34            ; PIT ch0: lobyte/hibyte, mode 2, binary
        out 0x43, al
        xor al, al
        out 0x40, al            ; divisor 0 = 65536
        out 0x40, al
        call pit
        mov [PREV_ADDR], cx
        xor esi, esi            ; PIT ticks since start
        xor edi, edi            ; pages dirtied since start
        mov ebp, START_ADDR     ; next page

.tick:
        call pit                ; cx = count now
        mov ax, [PREV_ADDR]
        sub ax, cx              ; elapsed ticks (the counter counts down, mod 65536)
        mov [PREV_ADDR], cx
        movzx eax, ax
        add esi, eax
        mov eax, esi
        mul dword [rate_k]      ; edx:eax = ticks * RATE_K
        shrd eax, edx, 24       ; pages due by now
.dirty:
        cmp edi, eax
        jae .tick
        inc byte [ebp]
        inc edi
        add ebp, 0x1000
        cmp ebp, ebx
        jb .dirty
        mov ebp, START_ADDR     ; pass complete
        inc dword [PASS_ADDR]
        push eax
        mov dx, 0x3f8
        mov al, 'B'
        out dx, al
        pop eax
        jmp .dirty

pit:                            ; latch and read PIT ch0 count into cx (clobbers al)
        mov al, 0x00
        out 0x43, al
        in al, 0x40
        mov cl, al
        in al, 0x40
        mov ch, al
        ret

        align 8
gdt:
        dq 0
        dq 0x00cf9a000000ffff
        dq 0x00cf92000000ffff
gdt_end:
gdtr:
        dw gdt_end - gdt - 1
        dd gdt

        times 0x1f0 - ($ - $$) db 0
        db 'EDRK'               ; marker the harness checks before patching
rate_k: dd 0                    ; patched: pages/s * 2^24 / 1193182
        times 510 - ($ - $$) db 0
        dw 0xaa55
