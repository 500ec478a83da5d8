extension OutputBuffer {
    /// Appends an address as inet_ntop(3) writes it.
    @inlinable package func append(address: IPAddress) {
        switch address {
        case .v4(let a): append(ipv4: a)
        case .v6(let hi, let lo): append(ipv6High: hi, low: lo)
        }
    }

    /// Dotted quad of a host-order IPv4 value.
    @inlinable package func append(ipv4 a: UInt32) {
        append(decimal: UInt64(a >> 24)); append(UInt8(ascii: "."))
        append(decimal: UInt64((a >> 16) & 0xff)); append(UInt8(ascii: "."))
        append(decimal: UInt64((a >> 8) & 0xff)); append(UInt8(ascii: "."))
        append(decimal: UInt64(a & 0xff))
    }

    /// IPv6 text as glibc's inet_ntop writes it: lower-case hex, the first
    /// longest run of two or more zero groups as "::", and the last 32 bits
    /// as a dotted quad for IPv4-compatible (::a.b.c.d) and IPv4-mapped
    /// (::ffff:a.b.c.d) addresses.
    package func append(ipv6High hi: UInt64, low lo: UInt64) {
        var words = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            words[i] = UInt16(truncatingIfNeeded: hi >> UInt64(48 - 16 * i))
            words[4 + i] = UInt16(truncatingIfNeeded: lo >> UInt64(48 - 16 * i))
        }
        var bestBase = -1, bestLen = 0, curBase = -1, curLen = 0
        for i in 0..<8 {
            if words[i] == 0 {
                if curBase == -1 { curBase = i; curLen = 1 } else { curLen += 1 }
            } else if curBase != -1 {
                if bestBase == -1 || curLen > bestLen { bestBase = curBase; bestLen = curLen }
                curBase = -1
            }
        }
        if curBase != -1, bestBase == -1 || curLen > bestLen { bestBase = curBase; bestLen = curLen }
        if bestBase != -1, bestLen < 2 { bestBase = -1 }
        var i = 0
        while i < 8 {
            if bestBase != -1, i >= bestBase, i < bestBase + bestLen {
                if i == bestBase { append(UInt8(ascii: ":")) }
                i += 1
                continue
            }
            if i != 0 { append(UInt8(ascii: ":")) }
            if i == 6, bestBase == 0, bestLen == 6 || (bestLen == 5 && words[5] == 0xffff) {
                append(ipv4: UInt32(truncatingIfNeeded: lo))
                return
            }
            append(hex: UInt64(words[i]))
            i += 1
        }
        if bestBase != -1, bestBase + bestLen == 8 { append(UInt8(ascii: ":")) }
    }
}
